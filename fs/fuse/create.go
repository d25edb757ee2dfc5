package fuse

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

var (
	_ = (fs.NodeMkdirer)((*node)(nil))
	_ = (fs.NodeMknoder)((*node)(nil))
	_ = (fs.NodeSymlinker)((*node)(nil))
	_ = (fs.NodeLinker)((*node)(nil))
)

// newChild makes child name with mk in the upper directory, owned by the
// caller when owned is set, and returns its inode. Where a whiteout hides a
// deleted entry below, the child is made in the work directory and
// exchanged with the whiteout; a directory made there is opaque, so that
// nothing of the deleted directory shows through it. Nothing below shows
// through a new child: the kernel asks for one only where the merged view
// has no such name.
func (n *node) newChild(ctx context.Context, name string, out *fuse.EntryOut, owned bool, mk func(p string) error) (*fs.Inode, syscall.Errno) {
	if n.u.readOnly {
		return nil, syscall.EROFS
	}
	if len(name) > 255 {
		return nil, syscall.ENAMETOOLONG
	}
	n.u.mu.Lock()
	defer n.u.mu.Unlock()
	defer n.u.changed()
	if err := n.copyUp(true); err != nil {
		return nil, fs.ToErrno(err)
	}
	up := filepath.Join(n.upperPath(), name)
	p := up
	err := mk(p)
	var st syscall.Stat_t
	overWhiteout := errors.Is(err, syscall.EEXIST) && syscall.Lstat(up, &st) == nil && isWhiteout(&st)
	if overWhiteout {
		p = n.u.tmpName()
		err = mk(p)
	}
	if err != nil {
		return nil, fs.ToErrno(err)
	}
	if err := n.own(ctx, p, owned); err != nil {
		os.RemoveAll(p)
		return nil, fs.ToErrno(err)
	}
	if overWhiteout {
		if err := replaceWhiteout(p, up); err != nil {
			os.RemoveAll(p)
			return nil, fs.ToErrno(err)
		}
	}
	if err := syscall.Lstat(up, &st); err != nil {
		return nil, fs.ToErrno(err)
	}
	out.Attr.FromStat(&st)
	out.Attr.Ino = n.u.newIno(st.Ino)
	return n.NewInode(ctx, &node{u: n.u}, n.u.stableAttr(&out.Attr)), 0
}

// replaceWhiteout puts the new entry p in place of the whiteout at up.
func replaceWhiteout(p, up string) error {
	if fi, err := os.Lstat(p); err == nil && fi.IsDir() {
		if err := unix.Lsetxattr(p, xattrOpaque, []byte("y"), 0); err != nil {
			return err
		}
	}
	if err := unix.Renameat2(unix.AT_FDCWD, p, unix.AT_FDCWD, up, unix.RENAME_EXCHANGE); err != nil {
		return err
	}
	return os.Remove(p)
}

// own gives the new entry at p to the caller: its uid, and its gid unless
// the parent directory is setgid, in which case the kernel already gave it
// the parent's group. Entries made for root need nothing: the server is
// root.
func (n *node) own(ctx context.Context, p string, owned bool) error {
	caller, ok := fuse.FromContext(ctx)
	if !ok || !owned || (caller.Uid == 0 && caller.Gid == 0) {
		return nil
	}
	gid := int(caller.Gid)
	var parent syscall.Stat_t
	if err := syscall.Stat(filepath.Dir(p), &parent); err == nil && parent.Mode&syscall.S_ISGID != 0 {
		gid = -1
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil {
		return err
	}
	if err := os.Lchown(p, int(caller.Uid), gid); err != nil {
		return err
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFLNK && st.Mode&(syscall.S_ISUID|syscall.S_ISGID) != 0 {
		return syscall.Chmod(p, st.Mode&07777)
	}
	return nil
}

// Mkdir implements fs.NodeMkdirer.
func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return n.newChild(ctx, name, out, true, func(p string) error { return syscall.Mkdir(p, mode&07777) })
}

// Mknod implements fs.NodeMknoder.
func (n *node) Mknod(ctx context.Context, name string, mode, dev uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return n.newChild(ctx, name, out, true, func(p string) error { return syscall.Mknod(p, mode, int(dev)) })
}

// Symlink implements fs.NodeSymlinker.
func (n *node) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return n.newChild(ctx, name, out, true, func(p string) error { return syscall.Symlink(target, p) })
}

// Link implements fs.NodeLinker: the target is copied up, with its whole
// hardlink group, and linked in the upper directory.
func (n *node) Link(ctx context.Context, target fs.InodeEmbedder, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	t, ok := target.(*node)
	if !ok {
		return nil, syscall.EXDEV
	}
	if n.u.readOnly {
		return nil, syscall.EROFS
	}
	n.u.mu.Lock()
	err := t.copyUp(true)
	n.u.mu.Unlock()
	if err != nil {
		return nil, fs.ToErrno(err)
	}
	src := t.upperPath()
	return n.newChild(ctx, name, out, false, func(p string) error { return syscall.Link(src, p) })
}
