package oci

import (
	"crypto/sha256"
	"fmt"
	"hash"
	"io"

	"github.com/acetate/acetate/layers"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// SizeUnknown, given to Verify, says a blob's size was not declared.
const SizeUnknown = -1

// verifyingReader checks a blob against its digest and declared size: a
// read past the size fails at once, and the read that reaches the end
// returns an error wrapping layers.ErrCorrupt instead of io.EOF when the
// content is shorter or does not hash to the digest.
type verifyingReader struct {
	r    io.Reader
	h    hash.Hash
	want v1.Hash
	size int64
	n    int64
}

// Verify wraps r, the content of the blob with digest want and size bytes
// (SizeUnknown when no size was declared: the caller bounds the read).
func Verify(r io.Reader, want v1.Hash, size int64) io.Reader {
	return &verifyingReader{r: r, h: sha256.New(), want: want, size: size}
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	if v.size >= 0 && int64(len(p)) > v.size-v.n+1 {
		p = p[:v.size-v.n+1] // one byte more than declared shows a longer blob
	}
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if v.size >= 0 && v.n > v.size {
		return n, fmt.Errorf("blob %s is longer than its declared %d bytes: %w", v.want, v.size, layers.ErrCorrupt)
	}
	if err == io.EOF {
		err = v.check()
	}
	return n, err
}

// check runs at the end of the blob: io.EOF when it is right.
func (v *verifyingReader) check() error {
	if v.size >= 0 && v.n != v.size {
		return fmt.Errorf("blob %s has %d bytes, its descriptor declares %d: %w", v.want, v.n, v.size, layers.ErrCorrupt)
	}
	got := fmt.Sprintf("%x", v.h.Sum(nil))
	if v.want.Algorithm != "sha256" || got != v.want.Hex {
		return fmt.Errorf("blob %s (%d bytes) hashes to sha256:%s: %w", v.want, v.n, got, layers.ErrCorrupt)
	}
	return io.EOF
}

// drain reads what is left of a verifying reader (a tar stream's padding
// and trailer, a compressor's footer), so that its check runs.
func drain(r io.Reader) error {
	_, err := io.Copy(io.Discard, r)
	return err
}
