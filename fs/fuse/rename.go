package fuse

import (
	"context"
	"syscall"

	"github.com/acetate/acetate/internal/beneath"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// Rename renames child name to newName in np, for files and directories wherever they
// live, never with EXDEV. A file is copied up and renamed in the upper
// directory. A directory with content below is copied up alone and gets a
// redirect to its lower directory, so its content stays below. A whiteout
// is left behind when something below has the old name. RENAME_NOREPLACE
// and RENAME_EXCHANGE are supported.
func (n *node) Rename(ctx context.Context, name string, np *node, newName string, flags uint32) syscall.Errno {
	if n.u.readOnly {
		return syscall.EROFS
	}
	if len(newName) > 255 {
		return syscall.ENAMETOOLONG
	}
	n.u.mu.Lock()
	defer n.u.mu.Unlock()
	defer n.u.changed()
	src, errno := n.prepareMove(name)
	if errno != 0 {
		return errno
	}
	if err := np.copyUp(true); err != nil {
		return fs.ToErrno(err)
	}
	var dstAttr fuse.Attr
	dst, dstErr := np.lookupChild(newName, &dstAttr)
	if flags&unix.RENAME_EXCHANGE != 0 && dstErr == 0 {
		dst, dstErr = np.prepareMove(newName)
	}
	srcUp, err := n.childAt(name)
	if err != nil {
		return fs.ToErrno(err)
	}
	defer srcUp.Close()
	dstUp := srcUp.Child(newName) // within one directory: one descriptor
	if np != n {
		if dstUp, err = np.childAt(newName); err != nil {
			return fs.ToErrno(err)
		}
		defer dstUp.Close()
	}
	if flags&unix.RENAME_EXCHANGE != 0 {
		if dstErr != 0 {
			return dstErr
		}
		n.hideBelow(dstUp, dst, name)
		np.hideBelow(srcUp, src, newName)
		return fs.ToErrno(dstUp.Rename(srcUp, unix.RENAME_EXCHANGE))
	}
	if dstErr == 0 {
		if flags&unix.RENAME_NOREPLACE != 0 {
			return syscall.EEXIST
		}
		if errno := np.clearTarget(newName, dstUp, dst, &dstAttr, src); errno != 0 {
			return errno
		}
	}
	np.hideBelow(srcUp, src, newName)
	return fs.ToErrno(n.moveUpper(name, srcUp, dstUp))
}

// prepareMove copies child name up so that it can be renamed, and returns
// it.
func (n *node) prepareMove(name string) (*node, syscall.Errno) {
	var attr fuse.Attr
	child, errno := n.lookupChild(name, &attr)
	if errno != 0 {
		return nil, errno
	}
	child.isDir = attr.Mode&syscall.S_IFMT == syscall.S_IFDIR
	rel := childRel(n.rel(), name)
	if err := n.u.copyUp(rel, child.lower, true); err != nil {
		return nil, fs.ToErrno(err)
	}
	if child.isDir && child.lower != "" {
		up, err := n.u.at(rel)
		if err != nil {
			return nil, fs.ToErrno(err)
		}
		defer up.Close()
		if err := up.Setxattr(xattrRedirect, []byte(child.lower), 0); err != nil {
			return nil, fs.ToErrno(err)
		}
	}
	return child, 0
}

// hideBelow makes the directory moved, now at up and about to become
// child name of n, opaque when it has nothing below of its own but something below has the
// name it moves to.
func (n *node) hideBelow(up beneath.At, moved *node, name string) {
	if moved != nil && moved.isDir && moved.lower == "" && n.lowerHas(name) {
		up.Setxattr(xattrOpaque, []byte("y"), 0)
	}
}

// clearTarget checks that src may replace dst, child name of n at up, and
// removes what is left of dst in the upper directory.
func (n *node) clearTarget(name string, up beneath.At, dst *node, dstAttr *fuse.Attr, src *node) syscall.Errno {
	dstIsDir := dstAttr.Mode&syscall.S_IFMT == syscall.S_IFDIR
	switch {
	case dstIsDir && !src.isDir:
		return syscall.EISDIR
	case !dstIsDir && src.isDir:
		return syscall.ENOTDIR
	case dstIsDir:
		if errno := n.checkEmpty(name, dst); errno != 0 {
			return errno
		}
	}
	n.u.forgetIno(up)
	if dstIsDir {
		return fs.ToErrno(up.RemoveAll())
	}
	return 0
}

// moveUpper renames srcUp (child name of n) to dstUp, leaving a whiteout
// when something below has the old name, and exchanging with a whiteout
// that is at the new name.
func (n *node) moveUpper(name string, srcUp, dstUp beneath.At) error {
	var st unix.Stat_t
	if dstUp.Lstat(&st) == nil && isWhiteout(&st) {
		if err := dstUp.Rename(srcUp, unix.RENAME_EXCHANGE); err != nil {
			return err
		}
		if n.lowerHas(name) {
			return nil
		}
		return srcUp.Remove()
	}
	if n.lowerHas(name) {
		return renameWhiteout(srcUp, dstUp)
	}
	return dstUp.Rename(srcUp, 0)
}
