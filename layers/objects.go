package layers

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"
)

// ErrCorrupt is wrapped by every error about content that does not match
// its digest.
var ErrCorrupt = errors.New("content does not match its digest")

// ObjectFile is the absolute path of object d.
func (s *Store) ObjectFile(d digest.Digest) string {
	return filepath.Join(s.ObjectsDir(), ObjectPath(d))
}

// HasObject reports whether object d is in the store.
func (s *Store) HasObject(d digest.Digest) bool {
	_, err := os.Lstat(s.ObjectFile(d))
	return err == nil
}

// OpenObject opens object d for reading. The reader verifies the content as
// it streams: the read that reaches the end returns an error wrapping
// ErrCorrupt instead of io.EOF when the content or its size is wrong.
func (s *Store) OpenObject(d digest.Digest, size int64) (io.ReadCloser, error) {
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("object %q: %w", d, err)
	}
	f, err := s.openObjectFile(d)
	if err != nil {
		return nil, err
	}
	return &verifyingReader{f: f, h: sha256.New(), want: d, size: size}, nil
}

func (s *Store) openObjectFile(d digest.Digest) (*os.File, error) {
	f, err := os.Open(s.ObjectFile(d))
	if err != nil {
		return nil, fmt.Errorf("object %s: %w", d, err)
	}
	return f, nil
}

// checkCopy copies the data of obj, object d, to dst (nil: only verify),
// leaving holes, and reports an error wrapping ErrCorrupt when the object
// is not size bytes hashing to d.
func (s *Store) checkCopy(obj *os.File, d digest.Digest, size int64, dst *os.File, buf []byte) error {
	fi, err := obj.Stat()
	if err != nil {
		return fmt.Errorf("object %s: %w", d, err)
	}
	if fi.Size() != size {
		return fmt.Errorf("object %s has %d bytes, expected %d: %w", d, fi.Size(), size, ErrCorrupt)
	}
	got, err := copyData(obj, size, dst, buf)
	if err != nil {
		return fmt.Errorf("object %s: %w", d, err)
	}
	if got != d {
		return fmt.Errorf("object %s hashes to %s: %w", d, got, ErrCorrupt)
	}
	return nil
}

type verifyingReader struct {
	f    *os.File
	h    hash.Hash
	want digest.Digest
	size int64
	n    int64
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	n, err := v.f.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if err == io.EOF {
		got := digest.NewDigest(digest.SHA256, v.h)
		if got != v.want || (v.size >= 0 && v.n != v.size) {
			return n, fmt.Errorf("object %s (%d bytes, expected %d) hashes to %s: %w", v.want, v.n, v.size, got, ErrCorrupt)
		}
	}
	return n, err
}

func (v *verifyingReader) Close() error { return v.f.Close() }

// VerifyObject re-hashes object d and reports an error wrapping ErrCorrupt
// when it does not match, or os.ErrNotExist when it is missing.
// Only the object's data is read: holes are hashed as zeros.
func (s *Store) VerifyObject(d digest.Digest) error {
	f, err := s.openObjectFile(d)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("object %s: %w", d, err)
	}
	return s.checkCopy(f, d, fi.Size(), nil, make([]byte, 256<<10))
}

// zeroBlock is compared against to find blocks that can stay holes.
var zeroBlock = make([]byte, 4096)

// writeSparse writes p at offset off of f, leaving 4 KiB blocks that are all
// zero as holes. The caller truncates f to its full size at the end.
func writeSparse(f *os.File, p []byte, off int64) error {
	for len(p) > 0 {
		n := min(len(p), len(zeroBlock))
		if string(p[:n]) != string(zeroBlock[:n]) {
			// Extend the run over following non-zero blocks.
			for n < len(p) {
				m := min(len(p)-n, len(zeroBlock))
				if string(p[n:n+m]) == string(zeroBlock[:m]) {
					break
				}
				n += m
			}
			if _, err := f.WriteAt(p[:n], off); err != nil {
				return err
			}
		}
		p, off = p[n:], off+int64(n)
	}
	return nil
}

// copySparse copies r to f from offset 0, keeping zero blocks as holes, and
// returns the sha256 of what it copied and its length.
func copySparse(f *os.File, r io.Reader, buf []byte) (digest.Digest, int64, error) {
	h := sha256.New()
	var off int64
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			h.Write(buf[:n])
			if werr := writeSparse(f, buf[:n], off); werr != nil {
				return "", off, werr
			}
			off += int64(n)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return "", off, err
		}
	}
	if err := f.Truncate(off); err != nil {
		return "", off, err
	}
	return digest.NewDigest(digest.SHA256, h), off, nil
}
