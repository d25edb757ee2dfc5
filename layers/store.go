package layers

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/acetate/acetate/internal/flock"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// Store is a content-addressed store rooted at one directory. It is safe for
// concurrent use by several goroutines and several processes.
type Store struct {
	root string
}

// Open opens the store at root, creating its directories when needed.
func Open(root string) (*Store, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("store root %q: %w", root, err)
	}
	s := &Store{root: abs}
	for _, d := range []string{s.ObjectsDir(), s.LayersDir(), s.TmpDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
	}
	f, err := os.OpenFile(filepath.Join(s.root, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	return s, f.Close()
}

// Root is the absolute path of the store.
func (s *Store) Root() string { return s.root }

// ObjectsDir holds the file objects; it is the data-only lower layer of an
// overlay mount.
func (s *Store) ObjectsDir() string { return filepath.Join(s.root, "objects") }

// LayersDir holds one directory per layer.
func (s *Store) LayersDir() string { return filepath.Join(s.root, "layers") }

// TmpDir is staging space on the store's filesystem.
func (s *Store) TmpDir() string { return filepath.Join(s.root, "tmp") }

// ObjectPath is where the object with digest d lives, relative to ObjectsDir.
func ObjectPath(d digest.Digest) string {
	h := d.Encoded()
	return h[:2] + "/" + h
}

// LayerDir is the directory of layer d.
func (s *Store) LayerDir(d digest.Digest) string {
	return filepath.Join(s.LayersDir(), d.Encoded())
}

// Lock is a held store lock; Unlock releases it.
type Lock struct{ f *os.File }

// Unlock releases the lock.
func (l *Lock) Unlock() error { return l.f.Close() }

// LockShared is taken by every operation that adds to the store, so that GC,
// which takes LockExclusive, never removes what a writer is about to reference.
func (s *Store) LockShared() (*Lock, error) { return s.lock(unix.LOCK_SH) }

// LockExclusive is taken by GC.
func (s *Store) LockExclusive() (*Lock, error) { return s.lock(unix.LOCK_EX) }

func (s *Store) lock(how int) (*Lock, error) {
	f, err := os.OpenFile(filepath.Join(s.root, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock store: %w", err)
	}
	err = flock.Lock(int(f.Fd()), how)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock store: %w", err)
	}
	return &Lock{f: f}, nil
}

// syncfs flushes every pending write on the store's filesystem: one call
// instead of an fsync per file.
func (s *Store) syncfs() error {
	f, err := os.Open(s.root)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return fmt.Errorf("syncfs %s: %w", s.root, err)
	}
	return nil
}

func isNotEmpty(err error) bool { return errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EEXIST) }
