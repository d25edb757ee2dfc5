package fuse

import (
	"errors"
	"syscall"

	"github.com/acetate/acetate/internal/beneath"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// remove removes child name, a directory when dir is set (rmdir), else
// anything but a directory (unlink). The upper entry goes, and a whiteout
// takes its place when something below has the name. A directory must be
// empty in the merged view; its upper directory may still hold whiteouts,
// which go with it.
func (n *node) remove(name string, dir bool) syscall.Errno {
	if n.u.readOnly {
		return syscall.EROFS
	}
	n.u.mu.Lock()
	defer n.u.mu.Unlock()
	defer n.u.changed()
	var attr fuse.Attr
	child, errno := n.lookupChild(name, &attr)
	if errno != 0 {
		return errno
	}
	isDir := attr.Mode&syscall.S_IFMT == syscall.S_IFDIR
	switch {
	case dir && !isDir:
		return syscall.ENOTDIR
	case !dir && isDir:
		return syscall.EISDIR
	case dir:
		if errno := n.checkEmpty(name, child); errno != 0 {
			return errno
		}
	}
	if err := n.copyUp(true); err != nil {
		return fs.ToErrno(err)
	}
	if attr.Mode&syscall.S_IFMT == syscall.S_IFREG && attr.Nlink > 1 {
		// Copy the hardlink group up, so that the links left count
		// themselves right.
		if err := n.u.copyUp(childRel(n.rel(), name), child.lower, true); err != nil {
			return fs.ToErrno(err)
		}
	}
	up, err := n.childAt(name)
	if err != nil {
		return fs.ToErrno(err)
	}
	defer up.Close()
	n.u.forgetIno(up)
	if err := up.RemoveAll(); err != nil {
		return fs.ToErrno(err)
	}
	if n.lowerHas(name) {
		return fs.ToErrno(mkWhiteout(up))
	}
	return 0
}

// checkEmpty returns ENOTEMPTY unless directory child, named name in n, is
// empty in the merged view.
func (n *node) checkEmpty(name string, child *node) syscall.Errno {
	probe := &node{u: n.u, lower: child.lower}
	up, err := n.childAt(name)
	if err != nil {
		return fs.ToErrno(err)
	}
	defer up.Close()
	entries, errno := probe.listAt(&up)
	if errno != 0 {
		return errno
	}
	if len(entries) > 0 {
		return syscall.ENOTEMPTY
	}
	return 0
}

// mkWhiteout makes a whiteout at p.
func mkWhiteout(p beneath.At) error { return p.Mknod(unix.S_IFCHR, 0) }

// renameWhiteout renames old to new leaving a whiteout at old, atomically
// where the filesystem supports RENAME_WHITEOUT.
func renameWhiteout(old, new beneath.At) error {
	err := new.Rename(old, unix.RENAME_WHITEOUT)
	if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.EOPNOTSUPP) {
		return err
	}
	if err := new.Rename(old, 0); err != nil {
		return err
	}
	return mkWhiteout(old)
}
