package fuse

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"syscall"

	"github.com/acetate/acetate/internal/beneath"

	"golang.org/x/sys/unix"
)

// copyUp makes sure the node is in the upper directory as a full copy:
// data, then metadata. With data false, a regular file that must be copied
// is made empty instead (the caller truncates it anyway).
func (n *node) copyUp(data bool) error {
	if n.lower == "" {
		// Nothing below: the node is in the upper directory already, or
		// nowhere, and then what the caller does next fails with ENOENT.
		return nil
	}
	if n.isUpperDir() {
		return nil // a directory is whole once it is there
	}
	return n.u.copyUp(n.rel(), n.lower, data)
}

// isUpperDir reports whether the node is a directory in the upper
// directory, through its parent's descriptor.
func (n *node) isUpperDir() bool {
	a, err := n.upperAt()
	if err != nil {
		return false
	}
	defer a.Close()
	var st unix.Stat_t
	return a.Lstat(&st) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR
}

// copyUp copies the entry at lower path lowerPath up to rel, parents first.
func (u *union) copyUp(rel, lowerPath string, data bool) error {
	if done, err := u.copiedUp(rel, lowerPath); done {
		return err
	}
	if rel == "" || lowerPath == "" {
		return fmt.Errorf("copy up %s: %w", rel, syscall.ENOENT)
	}
	if err := u.copyUp(parentRel(rel), path.Dir(lowerPath), true); err != nil {
		return err
	}
	a, err := u.at(rel)
	if err != nil {
		return fmt.Errorf("copy up %s: %w", rel, err)
	}
	defer a.Close()
	e, ok := u.lower.Lookup(lowerPath)
	if !ok {
		return fmt.Errorf("copy up %s: lower %s: %w", rel, lowerPath, syscall.ENOENT)
	}
	if err := u.copyUpEntry(a, lowerPath, e, data); err != nil {
		return fmt.Errorf("copy up %s: %w", rel, err)
	}
	if e.Mode&syscall.S_IFMT == syscall.S_IFREG && e.Nlink > 1 {
		return u.copyUpLinks(a, rel, lowerPath)
	}
	return nil
}

// copiedUp reports whether rel is in the upper directory already, and
// completes it first when it is a metacopy file (only a file with data
// below, lowerPath set, can be one).
func (u *union) copiedUp(rel, lowerPath string) (bool, error) {
	a, err := u.at(rel)
	if err != nil {
		return false, nil
	}
	defer a.Close()
	var st unix.Stat_t
	if a.Lstat(&st) != nil {
		return false, nil
	}
	if lowerPath != "" && st.Mode&unix.S_IFMT == unix.S_IFREG && isMetacopy(a) {
		return true, u.completeMetacopy(a, lowerPath, &st)
	}
	return true, nil
}

func parentRel(rel string) string {
	if p := path.Dir(rel); p != "." {
		return p
	}
	return ""
}

// copyUpEntry makes a copy of lower entry e in the work directory and
// renames it to a.
func (u *union) copyUpEntry(a beneath.At, lowerPath string, e *Entry, data bool) error {
	return u.replace(a, e.Ino, func(tmp beneath.At) error {
		if err := u.materialize(tmp, lowerPath, e, data); err != nil {
			return err
		}
		return setMeta(tmp, e)
	})
}

// replace makes a file at a new name in the work directory with build, and
// renames it to a, where it shows with inode number ino.
func (u *union) replace(a beneath.At, ino uint64, build func(tmp beneath.At) error) error {
	defer u.changed()
	tmp := u.tmpAt()
	err := build(tmp)
	if err == nil {
		err = a.Rename(tmp, 0)
	}
	if err != nil {
		tmp.RemoveAll()
		return err
	}
	var st unix.Stat_t
	if err := a.Lstat(&st); err != nil {
		return err
	}
	return u.keepIno(a, st.Ino, ino)
}

// materialize creates at p a file of e's type, with e's data.
func (u *union) materialize(p beneath.At, lowerPath string, e *Entry, data bool) error {
	switch e.Mode & syscall.S_IFMT {
	case syscall.S_IFDIR:
		return p.Mkdir(0o700)
	case syscall.S_IFLNK:
		return p.Symlink(e.Target)
	case syscall.S_IFREG:
		if !data {
			return writeFile(p, nil)
		}
		src, err := u.lower.Open(lowerPath)
		if err != nil {
			return err
		}
		defer src.Close()
		return writeFile(p, src)
	default:
		return p.Mknod(e.Mode, int(e.Rdev))
	}
}

// writeFile creates p with the content of src (nil: empty). Copying one
// *os.File to another uses copy_file_range, which shares blocks where the
// filesystem can.
func writeFile(p beneath.At, src *os.File) error {
	dst, err := p.Open(os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if src != nil {
		_, err = io.Copy(dst, src)
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	return err
}

// setMeta gives the file p e's owner, mode, xattrs and mtime.
func setMeta(p beneath.At, e *Entry) error {
	if err := p.Chown(int(e.UID), int(e.GID)); err != nil {
		return err
	}
	if e.Mode&syscall.S_IFMT != syscall.S_IFLNK {
		if err := p.Chmod(e.Mode & 07777); err != nil {
			return err
		}
	}
	for _, x := range e.Xattrs {
		if err := p.Setxattr(escapeXattr(x.Name), x.Value, 0); err != nil {
			return fmt.Errorf("xattr %s: %w", x.Name, err)
		}
	}
	ts := unix.NsecToTimespec(e.Mtime)
	return p.Utimes([]unix.Timespec{ts, ts})
}

// copyUpLinks links the other members of the hardlink group of the file
// just copied up to a (at rel), at the paths where they show, so that the
// group stays one file.
func (u *union) copyUpLinks(a beneath.At, rel, lowerPath string) error {
	for _, other := range u.lower.Links(lowerPath) {
		// Links share one node, which may have been found through
		// another link's lower path: skip the link at rel, not lowerPath.
		otherRel := strings.TrimPrefix(other, "/")
		if otherRel == rel || !u.showsLower(otherRel) {
			continue
		}
		if err := u.copyUp(parentRel(otherRel), path.Dir(other), true); err != nil {
			return err
		}
		if err := u.linkAt(a, otherRel); err != nil {
			return fmt.Errorf("copy up hardlink %s: %w", other, err)
		}
	}
	return nil
}

// linkAt makes rel in the upper directory a new name of the upper file a.
func (u *union) linkAt(a beneath.At, rel string) error {
	dst, err := u.at(rel)
	if err != nil {
		return err
	}
	defer dst.Close()
	return dst.Link(a)
}

// showsLower reports whether the merged view shows the lower entry at rel
// at the same path: nothing in the upper directory replaces, hides or
// moves it or any of its parents.
func (u *union) showsLower(rel string) bool {
	prefix := ""
	for _, c := range strings.Split(rel, "/") {
		prefix = childRel(prefix, c)
		a, err := u.at(prefix)
		if errors.Is(err, syscall.ENOENT) {
			return true
		}
		if err != nil {
			return false
		}
		var st unix.Stat_t
		err = a.Lstat(&st)
		shows := err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR && !isOpaque(a)
		if shows {
			_, redirected := a.Xattr(xattrRedirect)
			shows = !redirected
		}
		a.Close()
		if errors.Is(err, syscall.ENOENT) {
			return true
		}
		if !shows {
			return false
		}
	}
	return false
}

// completeMetacopy turns the metacopy file a into a full copy, keeping its
// metadata and its inode number in the merged view.
func (u *union) completeMetacopy(a beneath.At, lowerPath string, st *unix.Stat_t) error {
	src, err := u.lower.Open(lowerPath)
	if err != nil {
		return fmt.Errorf("copy up: %w", err)
	}
	defer src.Close()
	return u.replace(a, u.ino(a, st.Ino), func(tmp beneath.At) error {
		if err := writeFile(tmp, src); err != nil {
			return err
		}
		return copyMeta(a, tmp, st)
	})
}

// copyMeta gives dst the owner, mode, own xattrs and times of src (stat st).
func copyMeta(src, dst beneath.At, st *unix.Stat_t) error {
	if err := dst.Chown(int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	if err := dst.Chmod(st.Mode & 07777); err != nil {
		return err
	}
	names, err := src.Listxattr()
	if err != nil {
		return err
	}
	for _, name := range names {
		if isOverlayXattr(name) && !isEscaped(name) {
			continue
		}
		if v, ok := src.Xattr(name); ok {
			if err := dst.Setxattr(name, []byte(v), 0); err != nil {
				return fmt.Errorf("xattr %s: %w", name, err)
			}
		}
	}
	ts := []unix.Timespec{unix.Timespec(st.Atim), unix.Timespec(st.Mtim)}
	return dst.Utimes(ts)
}
