package fuse

import (
	"context"
	"errors"
	"os"
	"syscall"

	"github.com/acetate/acetate/internal/beneath"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// openFlags are the open(2) flags that only matter when a file is created.
const openFlags = syscall.O_CREAT | syscall.O_EXCL | syscall.O_NOCTTY

// unusedFlags mean nothing for the regular files the server opens, and
// O_NONBLOCK would only make os.File register them with the runtime's
// poller, which refuses them, at every open.
const unusedFlags = syscall.O_NONBLOCK

// Open opens the node's file. A file opened for writing is copied up
// first (without its data when O_TRUNC drops it anyway); a file opened
// read-only is served from wherever its data is, a template file from its
// object, with the page cache kept between opens.
func (n *node) Open(ctx context.Context, flags uint32) (*file, uint32, syscall.Errno) {
	flags &^= openFlags | unusedFlags
	if flags&syscall.O_ACCMODE != syscall.O_RDONLY || flags&syscall.O_TRUNC != 0 {
		return n.openUpper(ctx, flags)
	}
	if f, err := n.openUpperFile(flags); f != nil || err != nil {
		if err != nil {
			return nil, 0, fs.ToErrno(err)
		}
		h, errno := n.upperHandle(f)
		return h, 0, errno
	}
	f, err := n.u.lower.Open(n.lower)
	if err != nil {
		return nil, 0, fs.ToErrno(err)
	}
	return newHandle(n, f, true), fuse.FOPEN_KEEP_CACHE, 0
}

// openUpperFile opens the node's file in the upper directory for reading
// when it holds the node's data, and returns nil, nil when the data is
// below (nothing in the upper directory, or a metacopy file).
func (n *node) openUpperFile(flags uint32) (*os.File, error) {
	a, err := n.upperAt()
	if err != nil {
		return nil, nil
	}
	defer a.Close()
	if n.lower != "" && isMetacopy(a) {
		return nil, nil
	}
	f, err := a.Open(int(flags), 0) // which looks at what it opens first
	if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ENOTDIR) {
		return nil, nil
	}
	return f, err
}

// openUpper copies the node up and opens its upper file for writing. A
// caller without CAP_FSETID loses the file's set-id bits here, as a write
// or truncate by it would clear them on any filesystem: with passthrough
// its writes reach the upper file as the server's, root's, which keep them.
func (n *node) openUpper(ctx context.Context, flags uint32) (*file, uint32, syscall.Errno) {
	if n.u.readOnly {
		return nil, 0, syscall.EROFS
	}
	n.u.mu.Lock()
	err := n.copyUp(flags&syscall.O_TRUNC == 0)
	n.u.mu.Unlock()
	if err != nil {
		return nil, 0, fs.ToErrno(err)
	}
	a, err := n.upperAt()
	if err != nil {
		return nil, 0, fs.ToErrno(err)
	}
	defer a.Close()
	f, err := a.Open(int(flags), 0)
	if err != nil {
		return nil, 0, fs.ToErrno(err)
	}
	if err := n.dropSetID(ctx, f); err != nil {
		f.Close()
		return nil, 0, fs.ToErrno(err)
	}
	h, errno := n.upperHandle(f)
	return h, 0, errno
}

// upperHandle wraps upper file f. Kernel passthrough binds one backing
// file to an inode while any of its handles is open, and every open of the
// inode must pass through to that file. So while a handle passes a template
// file through to its object, the upper file cannot be opened on the same
// kernel inode: the open fails with ESTALE, which makes the kernel look the
// path up again and retry, and the lookup then gives it a new inode (see
// rebind). As on kernel overlayfs, descriptors opened before the copy-up
// keep reading the template's data.
func (n *node) upperHandle(f *os.File) (*file, syscall.Errno) {
	if n.lowerOpens.Load() > 0 && n.u.passthrough.Load() {
		f.Close()
		n.rebind()
		return nil, syscall.ESTALE
	}
	return newHandle(n, f, false), 0
}

// rebind makes lookups of the node's inode number give the kernel a new
// inode from now on, of the next generation.
func (n *node) rebind() {
	id := n.ident
	n.u.inoMu.Lock()
	if n.u.gens[id.ino] == id.gen {
		n.u.gens[id.ino]++
	}
	n.u.inoMu.Unlock()
}

// Create makes and opens the file name, and returns its node and its
// open file.
func (n *node) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*node, *file, syscall.Errno) {
	var f *os.File
	child, errno := n.newChild(ctx, name, out, true, func(p beneath.At) (err error) {
		f, err = p.Open(int(flags&^(syscall.O_TRUNC|unusedFlags))|openFlags, mode&07777)
		return err
	})
	if errno != 0 {
		return nil, nil, errno
	}
	return child, newHandle(child, f, false), 0
}

// Setattr does chmod, chown, truncate and utimes, on the open upper file h
// when there is one, else on the node copied up.
func (n *node) Setattr(ctx context.Context, h *file, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if n.u.readOnly {
		return syscall.EROFS
	}
	if h != nil && !h.lower {
		return h.setattr(ctx, in, out)
	}
	n.u.mu.Lock()
	defer n.u.mu.Unlock()
	size, truncating := in.GetSize()
	if err := n.copyUp(!truncating || size > 0); err != nil {
		return fs.ToErrno(err)
	}
	a, err := n.upperAt()
	if err != nil {
		return fs.ToErrno(err)
	}
	defer a.Close()
	return n.setattrAt(ctx, a, in, &out.Attr)
}
