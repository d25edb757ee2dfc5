package upper

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/acetate/acetate/layers"
	"golang.org/x/sys/unix"
)

// Init creates an empty upper directory at dir whose root has the metadata
// of root, the template's root directory: the union shows the upper
// directory's root.
func Init(dir string, root *layers.Entry) error {
	if err := os.Mkdir(dir, 0o700); err != nil {
		return fmt.Errorf("create upper dir: %w", err)
	}
	return SetMetadata(dir, root)
}

// RootEntry returns the root directory of the tree at dir as the union
// shows it: its metadata and own xattrs.
func RootEntry(dir string) (*layers.Entry, error) {
	e, err := layers.EntryAt(dir, "/")
	if err != nil {
		return nil, err
	}
	e.Xattrs = OwnXattrs(e.Xattrs)
	return &e, nil
}

// Materialize turns the metacopy file rel of the upper directory dir into a
// full file holding the content of object e (the data it showed so far),
// keeping its metadata, so that it no longer depends on what is below.
func Materialize(s *layers.Store, dir, rel string, e *layers.Entry) error {
	p := filepath.Join(dir, rel)
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return fmt.Errorf("materialize %s: %w", rel, err)
	}
	xattrs, err := layers.ReadXattrs(p)
	if err != nil {
		return fmt.Errorf("materialize %s: %w", rel, err)
	}
	if err := copyObject(s, p, e); err != nil {
		return fmt.Errorf("materialize %s: %w", rel, err)
	}
	for _, name := range []string{XattrMetacopy, XattrRedirect, XattrOrigin} {
		if err := unix.Lremovexattr(p, name); err != nil && !errors.Is(err, unix.ENODATA) {
			return fmt.Errorf("materialize %s: remove %s: %w", rel, name, err)
		}
	}
	// A write drops security.capability; put back what the file had.
	for _, x := range xattrs {
		if !strings.HasPrefix(x.Name, XattrPrefix) || strings.HasPrefix(x.Name, escapedPrefix) {
			if err := unix.Lsetxattr(p, x.Name, x.Value, 0); err != nil {
				return fmt.Errorf("materialize %s: restore xattr %s: %w", rel, x.Name, err)
			}
		}
	}
	times := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, times, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("materialize %s: %w", rel, err)
	}
	return nil
}

// copyObject writes object e's content over the file at p, in place, so
// that its inode, owner, mode and xattrs stay.
func copyObject(s *layers.Store, p string, e *layers.Entry) error {
	r, err := s.OpenObject(e.Digest, e.Size)
	if err != nil {
		return err
	}
	defer r.Close()
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err = io.Copy(f, r); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
