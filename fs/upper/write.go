package upper

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/acetate/acetate/internal/beneath"
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
// keeping its metadata, so that it no longer depends on what is below. The
// file is reached and written through descriptors only (see openFile), so
// that a name the container swapped for a link to a host file gets an
// error, not the template's content written over the host's file.
func Materialize(s *layers.Store, dir, rel string, e *layers.Entry) error {
	d, err := openDir(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	at, err := beneath.ResolveDeep(int(d.Fd()), rel)
	if err != nil {
		return fmt.Errorf("materialize %q: %w", rel, err)
	}
	defer at.Close()
	if err := materialize(s, at, rel, e); err != nil {
		return fmt.Errorf("materialize %q: %w", rel, err)
	}
	return nil
}

func materialize(s *layers.Store, at beneath.At, rel string, e *layers.Entry) error {
	f, st, err := openFile(at, rel, unix.O_WRONLY)
	if err != nil {
		return err
	}
	defer f.Close()
	xattrs, err := layers.XattrsBeneath(at)
	if err != nil {
		return err
	}
	if err := copyObject(s, f, e); err != nil {
		return err
	}
	fd := int(f.Fd())
	for _, name := range []string{XattrMetacopy, XattrRedirect, XattrOrigin} {
		if err := unix.Fremovexattr(fd, name); err != nil && !errors.Is(err, unix.ENODATA) {
			return fmt.Errorf("remove %s: %w", name, err)
		}
	}
	// A write drops security.capability; put back what the file had.
	for _, x := range xattrs {
		if !strings.HasPrefix(x.Name, XattrPrefix) || strings.HasPrefix(x.Name, escapedPrefix) {
			if err := unix.Fsetxattr(fd, x.Name, x.Value, 0); err != nil {
				return fmt.Errorf("restore xattr %s: %w", x.Name, err)
			}
		}
	}
	return at.Utimes([]unix.Timespec{st.Atim, st.Mtim})
}

// copyObject writes object e's content over the open file f, in place, so
// that its inode, owner, mode and xattrs stay.
func copyObject(s *layers.Store, f *os.File, e *layers.Entry) error {
	r, err := s.OpenObject(e.Digest, e.Size)
	if err != nil {
		return err
	}
	defer r.Close()
	if _, err = io.Copy(f, r); err != nil {
		return err
	}
	return f.Sync()
}
