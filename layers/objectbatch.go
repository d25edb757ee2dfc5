package layers

import (
	"fmt"
	"io"
	"os"
	"sync/atomic"

	"github.com/opencontainers/go-digest"
)

// Objects stages objects received by their digests (as a pull fetches
// them) and commits them in groups, so that an interrupted transfer keeps
// every object verified and committed before it stopped. The caller holds
// the store's shared lock until the objects are referenced.
type Objects struct {
	st     *staging
	staged atomic.Int64
}

// NewObjects starts staging received objects.
func (s *Store) NewObjects() *Objects { return &Objects{st: s.newStaging()} }

// Has reports whether object d is in the store or staged.
func (o *Objects) Has(d digest.Digest) bool { return o.st.has(d) }

// Put stages object d of size bytes from r. Content that is not size bytes
// hashing to d is refused with an error wrapping ErrCorrupt, and not kept.
func (o *Objects) Put(d digest.Digest, size int64, r io.Reader) error {
	if o.st.has(d) {
		return nil
	}
	_, err := o.st.stage(func(f *os.File, buf []byte) (digest.Digest, error) {
		got, n, err := copySparse(f, io.LimitReader(r, size+1), buf)
		if err == nil && (got != d || n != size) {
			err = fmt.Errorf("object %s: received %d bytes (of %d) hashing to %s: %w", d, n, size, got, ErrCorrupt)
		}
		return got, err
	})
	if err == nil {
		o.staged.Add(size)
	}
	return err
}

// Staged is how many bytes were staged since the last Commit.
func (o *Objects) Staged() int64 { return o.staged.Load() }

// Commit makes the staged objects durable and puts them in place. It may
// run while another goroutine calls Put: no object is staged between its
// syncfs and its renames.
func (o *Objects) Commit() error {
	o.st.mu.Lock()
	defer o.st.mu.Unlock()
	o.staged.Store(0)
	if err := o.st.commit(); err != nil {
		o.st.abort()
		return err
	}
	return nil
}

// Abort drops the objects staged since the last Commit.
func (o *Objects) Abort() {
	o.st.mu.Lock()
	defer o.st.mu.Unlock()
	o.staged.Store(0)
	o.st.abort()
}
