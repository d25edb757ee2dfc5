package upper

import (
	"context"
	"fmt"

	"github.com/acetate/acetate/internal/beneath"
	"github.com/acetate/acetate/layers"
	"golang.org/x/sys/unix"
)

// Snapshot reads the upper directory dir as the plain tree it is and stages
// the content of its files in s: a layer holding every entry of the upper
// directory verbatim, whatever the template below. Whiteouts stay character
// devices 0/0, opaque, redirect, metacopy and origin marks stay the
// trusted.overlay.* xattrs they are (escaped names escaped), a metacopy
// file stays the sparse file it is (its holes cost nothing in the store),
// and hardlinks, holes, owners, modes and nanosecond times are kept, so
// that Restore gives back the very same upper directory for either driver.
// File content is deduplicated against the store: a snapshot costs what
// changed since the last one, plus the layer's metadata.
//
// dir is read as Read reads it, from descriptors only (see walk). The
// caller holds the store's shared lock until the tree is committed or
// aborted, and keeps the container from writing meanwhile (stopped, or
// frozen) for a consistent snapshot.
func Snapshot(ctx context.Context, s *layers.Store, dir string, p layers.Progress) (*layers.Tree, error) {
	return stageTree(ctx, s, dir, &reader{raw: true}, p)
}

// rawChild adds the entry e, found at at, as it is, and walks it when it is
// a directory.
func (r *reader) rawChild(at beneath.At, e layers.Entry, st *unix.Stat_t) error {
	switch e.Type {
	case layers.TypeDir:
		r.m.Entries = append(r.m.Entries, e)
		sub, err := openSame(at, e.Path, st, unix.O_RDONLY|unix.O_DIRECTORY)
		if err != nil {
			return err
		}
		defer sub.Close()
		return r.walk(sub, e.Path, "", false)
	case layers.TypeReg:
		if err := r.fileData(at, &e, st, "", nil); err != nil {
			return err
		}
	}
	r.m.Entries = append(r.m.Entries, e)
	return nil
}

// Restore writes the snapshot m (see Snapshot) into dst, a new directory,
// as the upper directory it was taken from: every entry, xattr, hardlink
// and hole. dst is the caller's own (in the store's tmp/), so nothing in
// it can be redirected; content is verified against its digest as it is
// copied.
func Restore(ctx context.Context, s *layers.Store, m *layers.Manifest, dst string, p layers.Progress) error {
	if err := s.ExportDir(ctx, m.Entries, dst, p); err != nil {
		return fmt.Errorf("restore upper dir: %w", err)
	}
	return nil
}
