package oci

import (
	"crypto/sha256"
	"fmt"
	"hash"
	"io"

	"github.com/acetate/acetate/layers"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// verifyingReader checks a blob against its digest: the read that reaches
// the end returns an error wrapping layers.ErrCorrupt instead of io.EOF when
// the content does not hash to the digest.
type verifyingReader struct {
	r    io.Reader
	h    hash.Hash
	want v1.Hash
	n    int64
}

// Verify wraps r, the content of the blob with digest want.
func Verify(r io.Reader, want v1.Hash) io.Reader {
	return &verifyingReader{r: r, h: sha256.New(), want: want}
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if err == io.EOF {
		got := fmt.Sprintf("%x", v.h.Sum(nil))
		if v.want.Algorithm != "sha256" || got != v.want.Hex {
			return n, fmt.Errorf("blob %s (%d bytes) hashes to sha256:%s: %w", v.want, v.n, got, layers.ErrCorrupt)
		}
	}
	return n, err
}

// drain reads what is left of a verifying reader (a tar stream's padding
// and trailer, a compressor's footer), so that its check runs.
func drain(r io.Reader) error {
	_, err := io.Copy(io.Discard, r)
	return err
}
