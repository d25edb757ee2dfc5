package fuse

import (
	"context"
	"errors"
	"syscall"

	"github.com/acetate/acetate/internal/beneath"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// newChild makes child name with mk in the upper directory, owned by the
// caller when owned is set, and returns its node. Where a whiteout hides a
// deleted entry below, the child is made in the work directory and
// exchanged with the whiteout; a directory made there is opaque, so that
// nothing of the deleted directory shows through it. Nothing below shows
// through a new child: the kernel asks for one only where the merged view
// has no such name.
func (n *node) newChild(ctx context.Context, name string, out *fuse.EntryOut, owned bool, mk func(p beneath.At) error) (*node, syscall.Errno) {
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
	up, err := n.childAt(name)
	if err != nil {
		return nil, fs.ToErrno(err)
	}
	defer up.Close()
	if errno := n.make(ctx, up, owned, mk); errno != 0 {
		return nil, errno
	}
	var st unix.Stat_t
	if err := up.Lstat(&st); err != nil {
		return nil, fs.ToErrno(err)
	}
	fromStat(&st, &out.Attr)
	out.Attr.Ino = n.u.newIno(st.Ino)
	child := &node{u: n.u}
	child.sawUpperDir(&st)
	return child, 0
}

// make makes the new entry up with mk, in place or, over a whiteout, in the
// work directory first.
func (n *node) make(ctx context.Context, up beneath.At, owned bool, mk func(p beneath.At) error) syscall.Errno {
	p := up
	err := mk(p)
	var st unix.Stat_t
	overWhiteout := errors.Is(err, syscall.EEXIST) && up.Lstat(&st) == nil && isWhiteout(&st)
	if overWhiteout {
		p = n.u.tmpAt()
		err = mk(p)
	}
	if err != nil {
		return fs.ToErrno(err)
	}
	if err := own(ctx, up.Dir, p, owned); err != nil {
		p.RemoveAll()
		return fs.ToErrno(err)
	}
	if overWhiteout {
		if err := replaceWhiteout(p, up); err != nil {
			p.RemoveAll()
			return fs.ToErrno(err)
		}
	}
	return 0
}

// replaceWhiteout puts the new entry p in place of the whiteout at up.
func replaceWhiteout(p, up beneath.At) error {
	var st unix.Stat_t
	if err := p.Lstat(&st); err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
		if err := p.Setxattr(xattrOpaque, []byte("y"), 0); err != nil {
			return err
		}
	}
	if err := up.Rename(p, unix.RENAME_EXCHANGE); err != nil {
		return err
	}
	return p.Remove()
}

// own gives the new entry p, made for the directory parent, to the caller:
// its uid, and its gid unless the parent directory is setgid, in which
// case it gets the parent's group (and a directory the setgid bit), as the
// kernel does for an entry made in place. Entries made for root in place
// need nothing: the server is root.
func own(ctx context.Context, parent int, p beneath.At, owned bool) error {
	caller, ok := fuse.FromContext(ctx)
	if !ok || !owned {
		return nil
	}
	inPlace := p.Dir == parent
	if caller.Uid == 0 && caller.Gid == 0 && inPlace {
		return nil
	}
	var dir unix.Stat_t
	if err := unix.Fstat(parent, &dir); err != nil {
		return err
	}
	setgid := dir.Mode&unix.S_ISGID != 0
	if caller.Uid == 0 && caller.Gid == 0 && !setgid {
		return nil
	}
	var st unix.Stat_t
	if err := p.Lstat(&st); err != nil {
		return err
	}
	gid := int(caller.Gid)
	mode := st.Mode & 07777
	if setgid {
		gid = int(dir.Gid)
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			mode |= unix.S_ISGID
		}
	}
	if err := p.Chown(int(caller.Uid), gid); err != nil {
		return err
	}
	// chown dropped any set-id bits: give them back, and the new ones.
	if st.Mode&unix.S_IFMT == unix.S_IFLNK || (mode == st.Mode&07777 && mode&(unix.S_ISUID|unix.S_ISGID) == 0) {
		return nil
	}
	return p.Chmod(mode)
}

// Mkdir makes the directory name.
func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*node, syscall.Errno) {
	return n.newChild(ctx, name, out, true, func(p beneath.At) error { return p.Mkdir(mode & 07777) })
}

// Mknod makes the special file name. A character device 0/0 is refused with
// EPERM, as on overlayfs: it is the upper format's whiteout, and one made
// through the union would hide the name below instead of showing a node.
func (n *node) Mknod(ctx context.Context, name string, mode, dev uint32, out *fuse.EntryOut) (*node, syscall.Errno) {
	if mode&syscall.S_IFMT == syscall.S_IFCHR && dev == 0 {
		return nil, syscall.EPERM
	}
	return n.newChild(ctx, name, out, true, func(p beneath.At) error { return p.Mknod(mode, int(dev)) })
}

// Symlink makes the symbolic link name.
func (n *node) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*node, syscall.Errno) {
	return n.newChild(ctx, name, out, true, func(p beneath.At) error { return p.Symlink(target) })
}

// Link makes name a new name of t: t is copied up, with its whole
// hardlink group, and linked in the upper directory.
func (n *node) Link(ctx context.Context, t *node, name string, out *fuse.EntryOut) (*node, syscall.Errno) {
	if n.u.readOnly {
		return nil, syscall.EROFS
	}
	n.u.mu.Lock()
	err := t.copyUp(true)
	n.u.mu.Unlock()
	if err != nil {
		return nil, fs.ToErrno(err)
	}
	// By path, not through a directory node: that may be n itself.
	src, err := n.u.at(t.rel())
	if err != nil {
		return nil, fs.ToErrno(err)
	}
	defer src.Close()
	return n.newChild(ctx, name, out, false, func(p beneath.At) error { return p.Link(src) })
}
