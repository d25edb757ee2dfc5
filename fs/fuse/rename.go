package fuse

import (
	"context"
	"os"
	"path/filepath"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

var _ = (fs.NodeRenamer)((*node)(nil))

// Rename implements fs.NodeRenamer, for files and directories wherever they
// live, never with EXDEV. A file is copied up and renamed in the upper
// directory. A directory with content below is copied up alone and gets a
// redirect to its lower directory, so its content stays below. A whiteout
// is left behind when something below has the old name. RENAME_NOREPLACE
// and RENAME_EXCHANGE are supported.
func (n *node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	np, ok := newParent.(*node)
	if !ok {
		return syscall.EXDEV
	}
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
	srcUp := filepath.Join(n.upperPath(), name)
	dstUp := filepath.Join(np.upperPath(), newName)
	if flags&unix.RENAME_EXCHANGE != 0 {
		if dstErr != 0 {
			return dstErr
		}
		if _, errno := np.prepareMove(newName); errno != 0 {
			return errno
		}
		n.hideBelow(dstUp, dst, name)
		np.hideBelow(srcUp, src, newName)
		return fs.ToErrno(unix.Renameat2(unix.AT_FDCWD, srcUp, unix.AT_FDCWD, dstUp, unix.RENAME_EXCHANGE))
	}
	if dstErr == 0 {
		if flags&unix.RENAME_NOREPLACE != 0 {
			return syscall.EEXIST
		}
		if errno := np.clearTarget(newName, dst, &dstAttr, src); errno != 0 {
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
	rel := filepath.Join(n.rel(), name)
	if err := n.u.copyUp(rel, child.lower, true); err != nil {
		return nil, fs.ToErrno(err)
	}
	if child.isDir && child.lower != "" {
		up := filepath.Join(n.u.upper, rel)
		if err := unix.Lsetxattr(up, xattrRedirect, []byte(child.lower), 0); err != nil {
			return nil, fs.ToErrno(err)
		}
	}
	return child, 0
}

// hideBelow makes the directory moved, now at up and about to become
// child name of n, opaque when it has nothing below of its own but something below has the
// name it moves to.
func (n *node) hideBelow(up string, moved *node, name string) {
	if moved != nil && moved.isDir && moved.lower == "" && n.lowerHas(name) {
		unix.Lsetxattr(up, xattrOpaque, []byte("y"), 0)
	}
}

// clearTarget checks that src may replace dst, child name of n, and removes
// what is left of dst in the upper directory.
func (n *node) clearTarget(name string, dst *node, dstAttr *fuse.Attr, src *node) syscall.Errno {
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
	up := filepath.Join(n.upperPath(), name)
	n.u.forgetIno(up)
	if dstIsDir {
		return fs.ToErrno(os.RemoveAll(up))
	}
	return 0
}

// moveUpper renames srcUp (child name of n) to dstUp, leaving a whiteout
// when something below has the old name, and exchanging with a whiteout
// that is at the new name.
func (n *node) moveUpper(name, srcUp, dstUp string) error {
	var st syscall.Stat_t
	if syscall.Lstat(dstUp, &st) == nil && isWhiteout(&st) {
		if err := unix.Renameat2(unix.AT_FDCWD, srcUp, unix.AT_FDCWD, dstUp, unix.RENAME_EXCHANGE); err != nil {
			return err
		}
		if n.lowerHas(name) {
			return nil
		}
		return os.Remove(srcUp)
	}
	if n.lowerHas(name) {
		return renameWhiteout(srcUp, dstUp)
	}
	return os.Rename(srcUp, dstUp)
}
