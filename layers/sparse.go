package layers

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// A file's cost is its data: holes are found with SEEK_DATA/SEEK_HOLE,
// hashed as the zeros they read as (so a sparse file's object digest is
// the sha256 of its dense content), and never read, written or sent.

// extent is a run of data in a file; what lies between extents is a hole.
type extent struct{ off, len int64 }

// dataExtents calls fn for each run of data in the first size bytes of f,
// in order. A filesystem without SEEK_DATA gives one run of everything.
func dataExtents(f *os.File, size int64, fn func(extent) error) error {
	fd := int(f.Fd())
	for off := int64(0); off < size; {
		start, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			return nil // only a hole is left
		}
		if errors.Is(err, unix.EINVAL) && off == 0 {
			return fn(extent{0, size}) // no SEEK_DATA here
		}
		if err != nil {
			return fmt.Errorf("seek data: %w", err)
		}
		if start >= size {
			return nil
		}
		end, err := unix.Seek(fd, start, unix.SEEK_HOLE)
		if err != nil {
			return fmt.Errorf("seek hole: %w", err)
		}
		end = min(end, size)
		if err := fn(extent{start, end - start}); err != nil {
			return err
		}
		off = end
	}
	return nil
}

// zeros is hashed in place of holes. It is made on first use: every
// process of the acetate binary (a container's monitor among them, which
// lives as long as its container) would otherwise carry it on its heap.
var zeros = sync.OnceValue(func() []byte { return make([]byte, 1<<20) })

// hashZeros writes n zero bytes to h.
func hashZeros(h io.Writer, n int64) {
	z := zeros()
	for n > 0 {
		k := min(n, int64(len(z)))
		h.Write(z[:k])
		n -= k
	}
}

// copyData hashes the first size bytes of src, reading only its data, and
// when dst is not nil writes that data at the same offsets of dst (zero
// blocks within it too left as holes) and truncates dst to size. It returns
// the sha256 of the content as read, holes as zeros. A file that ends early
// is an error: it changed while it was read.
func copyData(src *os.File, size int64, dst *os.File, buf []byte) (digest.Digest, error) {
	h := newContentHash()
	var done int64
	err := dataExtents(src, size, func(x extent) error {
		h.zeros(x.off - done)
		for done = x.off; done < x.off+x.len; {
			p := buf[:min(int64(len(buf)), x.off+x.len-done)]
			if _, err := src.ReadAt(p, done); err != nil {
				return fmt.Errorf("read at %d: %w", done, err)
			}
			h.Write(p)
			if dst != nil {
				if err := writeSparse(dst, p, done); err != nil {
					return err
				}
			}
			done += int64(len(p))
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	h.zeros(size - done)
	if dst != nil {
		if err := dst.Truncate(size); err != nil {
			return "", err
		}
	}
	return h.digest(), nil
}

// isSparse reports whether the file st describes has fewer blocks than its
// size needs, that is, holes.
func isSparse(st *unix.Stat_t) bool {
	return st.Blocks*512 < st.Size
}
