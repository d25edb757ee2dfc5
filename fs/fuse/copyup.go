package fuse

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

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
	return n.u.copyUp(n.rel(), n.lower, data)
}

// copyUp copies the entry at lower path lowerPath up to rel, parents first.
func (u *union) copyUp(rel, lowerPath string, data bool) error {
	up := filepath.Join(u.upper, rel)
	var st syscall.Stat_t
	if err := syscall.Lstat(up, &st); err == nil {
		// Only a file with data below (lowerPath set) can be a metacopy.
		if lowerPath != "" && st.Mode&syscall.S_IFMT == syscall.S_IFREG && isMetacopy(up) {
			return u.completeMetacopy(up, lowerPath, &st)
		}
		return nil
	}
	if rel == "" || lowerPath == "" {
		return fmt.Errorf("copy up %s: %w", rel, syscall.ENOENT)
	}
	if err := u.copyUp(parentRel(rel), path.Dir(lowerPath), true); err != nil {
		return err
	}
	e, ok := u.lower.Lookup(lowerPath)
	if !ok {
		return fmt.Errorf("copy up %s: lower %s: %w", rel, lowerPath, syscall.ENOENT)
	}
	if err := u.copyUpEntry(up, lowerPath, e, data); err != nil {
		return err
	}
	if e.Mode&syscall.S_IFMT == syscall.S_IFREG && e.Nlink > 1 {
		return u.copyUpLinks(up, lowerPath)
	}
	return nil
}

func parentRel(rel string) string {
	if p := filepath.Dir(rel); p != "." {
		return p
	}
	return ""
}

// copyUpEntry makes a copy of lower entry e in the work directory and
// renames it to up.
func (u *union) copyUpEntry(up, lowerPath string, e *Entry, data bool) error {
	return u.replace(up, e.Ino, func(tmp string) error {
		if err := u.materialize(tmp, lowerPath, e, data); err != nil {
			return err
		}
		return setMeta(tmp, e)
	})
}

// replace makes a file at a new path in the work directory with build, and
// renames it to up, where it shows with inode number ino.
func (u *union) replace(up string, ino uint64, build func(tmp string) error) error {
	defer u.changed()
	tmp := u.tmpName()
	err := build(tmp)
	if err == nil {
		err = syscall.Rename(tmp, up) // not os.Rename: it stats up first
	}
	if err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("copy up %s: %w", up, err)
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(up, &st); err != nil {
		return fmt.Errorf("copy up %s: %w", up, err)
	}
	return u.keepIno(up, st.Ino, ino)
}

// materialize creates at p a file of e's type, with e's data.
func (u *union) materialize(p, lowerPath string, e *Entry, data bool) error {
	switch e.Mode & syscall.S_IFMT {
	case syscall.S_IFDIR:
		return os.Mkdir(p, 0o700)
	case syscall.S_IFLNK:
		return os.Symlink(e.Target, p)
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
		return unix.Mknod(p, e.Mode, int(e.Rdev))
	}
}

// writeFile creates p with the content of src (nil: empty). Copying one
// *os.File to another uses copy_file_range, which shares blocks where the
// filesystem can.
func writeFile(p string, src *os.File) error {
	dst, err := openFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
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

// setMeta gives the file at p e's owner, mode, xattrs and mtime.
func setMeta(p string, e *Entry) error {
	if err := os.Lchown(p, int(e.UID), int(e.GID)); err != nil {
		return err
	}
	if e.Mode&syscall.S_IFMT != syscall.S_IFLNK {
		if err := syscall.Chmod(p, e.Mode&07777); err != nil {
			return err
		}
	}
	for _, x := range e.Xattrs {
		if err := unix.Lsetxattr(p, escapeXattr(x.Name), x.Value, 0); err != nil {
			return fmt.Errorf("xattr %s: %w", x.Name, err)
		}
	}
	ts := unix.NsecToTimespec(e.Mtime)
	return unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
}

// copyUpLinks links the other members of the hardlink group of the file
// just copied up to up, at the paths where they show, so that the group
// stays one file.
func (u *union) copyUpLinks(up, lowerPath string) error {
	for _, other := range u.lower.Links(lowerPath) {
		// Links share one node, which may have been found through
		// another link's lower path: skip the link at up, not lowerPath.
		if filepath.Join(u.upper, other) == up || !u.showsLower(other) {
			continue
		}
		rel := strings.TrimPrefix(other, "/")
		if err := u.copyUp(parentRel(rel), path.Dir(other), true); err != nil {
			return err
		}
		if err := os.Link(up, filepath.Join(u.upper, rel)); err != nil {
			return fmt.Errorf("copy up hardlink %s: %w", other, err)
		}
	}
	return nil
}

// showsLower reports whether the merged view shows the lower entry at p
// at the same path: nothing in the upper directory replaces, hides or
// moves it or any of its parents.
func (u *union) showsLower(p string) bool {
	up := u.upper
	for _, c := range strings.Split(strings.TrimPrefix(p, "/"), "/") {
		up = filepath.Join(up, c)
		var st syscall.Stat_t
		err := syscall.Lstat(up, &st)
		if errors.Is(err, syscall.ENOENT) {
			return true
		}
		if err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFDIR || isOpaque(up) {
			return false
		}
		if _, ok := getxattr(up, xattrRedirect); ok {
			return false
		}
	}
	return false
}

// completeMetacopy turns the metacopy file at up into a full copy, keeping
// its metadata and its inode number in the merged view.
func (u *union) completeMetacopy(up, lowerPath string, st *syscall.Stat_t) error {
	src, err := u.lower.Open(lowerPath)
	if err != nil {
		return fmt.Errorf("copy up %s: %w", up, err)
	}
	defer src.Close()
	return u.replace(up, u.ino(up, st.Ino), func(tmp string) error {
		if err := writeFile(tmp, src); err != nil {
			return err
		}
		return copyMeta(up, tmp, st)
	})
}

// copyMeta gives dst the owner, mode, own xattrs and times of src (stat st).
func copyMeta(src, dst string, st *syscall.Stat_t) error {
	if err := os.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	if err := syscall.Chmod(dst, st.Mode&07777); err != nil {
		return err
	}
	names, err := listxattr(src)
	if err != nil {
		return err
	}
	for _, name := range names {
		if isOverlayXattr(name) && !isEscaped(name) {
			continue
		}
		if v, ok := getxattr(src, name); ok {
			if err := unix.Lsetxattr(dst, name, []byte(v), 0); err != nil {
				return fmt.Errorf("xattr %s: %w", name, err)
			}
		}
	}
	ts := []unix.Timespec{unix.Timespec(st.Atim), unix.Timespec(st.Mtim)}
	return unix.UtimesNanoAt(unix.AT_FDCWD, dst, ts, unix.AT_SYMLINK_NOFOLLOW)
}
