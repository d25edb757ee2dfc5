package layers

import (
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"hash"

	"github.com/opencontainers/go-digest"
)

//go:generate go run ./internal/mkzerostates -gib 128 -out zerostates.go

// contentHash is the SHA-256 of a file's content, its holes hashed as the
// zeros they read as. A hole at the start of the file (truncate -s 100G,
// then a write at the end: a disk image, a database file) is not hashed
// byte by byte: the state after each whole GiB of zeros from the start is
// a constant (zerostates.go, up to 128 GiB), so the hash starts from the
// last one it passes, and a sparse file costs about its data and less than
// a GiB of zeros. The digest is the same SHA-256 either way.
type contentHash struct {
	h hash.Hash
	n int64
}

func newContentHash() *contentHash { return &contentHash{h: sha256.New()} }

// Write hashes p.
func (c *contentHash) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return c.h.Write(p)
}

// zeros hashes n zero bytes.
func (c *contentHash) zeros(n int64) {
	if c.n == 0 {
		if k := min(n>>30, int64(len(zeroStates))); k > 0 {
			c.h = afterZeroGiBs(k)
			c.n, n = k<<30, n-k<<30
		}
	}
	hashZeros(c.h, n)
	c.n += n
}

func (c *contentHash) digest() digest.Digest { return digest.NewDigest(digest.SHA256, c.h) }

// afterZeroGiBs returns a SHA-256 that has hashed k GiB of zeros, restored
// from zeroStates in the form crypto/sha256 marshals its state: a magic
// "sha\x03", the eight chaining words, the pending block (empty: a GiB is
// a whole number of blocks) and the length hashed.
func afterZeroGiBs(k int64) hash.Hash {
	state := []byte("sha\x03")
	for _, w := range zeroStates[k-1] {
		state = binary.BigEndian.AppendUint32(state, w)
	}
	state = append(state, make([]byte, sha256.BlockSize)...)
	state = binary.BigEndian.AppendUint64(state, uint64(k)<<30)
	h := sha256.New()
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(state); err != nil {
		panic("layers: crypto/sha256 no longer reads its marshalled state: " + err.Error())
	}
	return h
}
