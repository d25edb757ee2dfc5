package fuse

import (
	"context"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// rawFS answers the kernel's requests for one mount: it finds the nodes
// and open files they name in the mount's tree (tree.go, handles.go) and
// hands each request to them. What it does not implement is answered
// ENOSYS, after which the kernel sends no more of that kind, or does the
// work itself (locks, copy_file_range, O_TMPFILE).
//
// It answers OPENDIR with ENOSYS, which tells the kernel (Linux 5.1+) to
// stop sending OPENDIR and RELEASEDIR and to keep every directory's
// listing cached until the directory changes through the mount. A warm
// walk of a tree then costs the server nothing. Listing requests arrive
// without a handle; the listing is sorted and so gives the same offsets
// every time. It answers FLUSH with ENOSYS, after which the kernel sends
// none: the server's descriptors need nothing at close but their release.
type rawFS struct {
	fuse.RawFileSystem
	u *union
}

// newRawFS returns the requests' side of u.
func newRawFS(u *union) *rawFS {
	return &rawFS{RawFileSystem: fuse.NewDefaultRawFileSystem(), u: u}
}

// errnoStatus is the status that answers with errno.
func errnoStatus(errno syscall.Errno) fuse.Status { return fuse.Status(errno) }

// request is the context of a request from the caller h describes.
func request(cancel <-chan struct{}, h *fuse.InHeader) context.Context {
	return &fuse.Context{Caller: h.Caller, Cancel: cancel}
}

// String implements fuse.RawFileSystem.
func (r *rawFS) String() string { return "acetate" }

// Init implements fuse.RawFileSystem: the server, for notifications and
// backing files.
func (r *rawFS) Init(s *fuse.Server) { r.u.server.Store(s) }

// with runs fn on the node the kernel knows as id; an id it does not
// hold is answered ESTALE.
func (r *rawFS) with(id uint64, fn func(n *node) syscall.Errno) fuse.Status {
	n := r.u.node(id)
	if n == nil {
		return errnoStatus(syscall.ESTALE)
	}
	return errnoStatus(fn(n))
}

// withFile runs fn on the open file of handle fh.
func (r *rawFS) withFile(fh uint64, fn func(h *file) syscall.Errno) fuse.Status {
	h := r.u.handle(fh)
	if h == nil {
		return errnoStatus(syscall.EBADF)
	}
	return errnoStatus(fn(h))
}

// entry adopts child, made by a request, as name in parent (see adopt).
func (r *rawFS) entry(parent *node, name string, child *node, errno syscall.Errno, out *fuse.EntryOut) syscall.Errno {
	if errno == 0 {
		r.u.adopt(parent, name, child, out)
	}
	return errno
}

// Lookup implements fuse.RawFileSystem. A name that is not there is
// answered with a negative entry the kernel keeps as long as a positive
// one: the name appears only through this mount, which tells it.
func (r *rawFS) Lookup(cancel <-chan struct{}, h *fuse.InHeader, name string, out *fuse.EntryOut) fuse.Status {
	return r.with(h.NodeId, func(parent *node) syscall.Errno {
		_, errno := r.lookup(parent, name, out)
		if errno == syscall.ENOENT {
			out.NodeId = 0
			out.SetEntryTimeout(cacheTimeout)
			return 0
		}
		return errno
	})
}

// lookup finds child name of parent, a lookup the kernel asked for (a
// LOOKUP, or an entry of a READDIRPLUS), and adopts it.
func (r *rawFS) lookup(parent *node, name string, out *fuse.EntryOut) (*node, syscall.Errno) {
	r.u.lookups.Add(1)
	child, errno := parent.lookupChild(name, &out.Attr)
	if errno != 0 {
		return nil, errno
	}
	return r.u.adopt(parent, name, child, out), 0
}

// Forget implements fuse.RawFileSystem.
func (r *rawFS) Forget(id, nlookup uint64) { r.u.forget(id, nlookup) }

// GetAttr implements fuse.RawFileSystem.
func (r *rawFS) GetAttr(cancel <-chan struct{}, in *fuse.GetAttrIn, out *fuse.AttrOut) fuse.Status {
	return r.with(in.NodeId, func(n *node) syscall.Errno {
		h := r.u.handle(in.Fh())
		if h == nil {
			h = n.firstOpen()
		}
		errno := n.getattrVia(h, &out.Attr)
		if errno == 0 {
			n.stamp(&out.Attr)
			out.SetTimeout(cacheTimeout)
		}
		return errno
	})
}

// SetAttr implements fuse.RawFileSystem.
func (r *rawFS) SetAttr(cancel <-chan struct{}, in *fuse.SetAttrIn, out *fuse.AttrOut) fuse.Status {
	return r.with(in.NodeId, func(n *node) syscall.Errno {
		fh, _ := in.GetFh()
		errno := n.Setattr(request(cancel, &in.InHeader), r.u.handle(fh), in, out)
		out.Mode = out.Mode&07777 | n.ident.typ
		return errno
	})
}

// Mknod implements fuse.RawFileSystem.
func (r *rawFS) Mknod(cancel <-chan struct{}, in *fuse.MknodIn, name string, out *fuse.EntryOut) fuse.Status {
	return r.with(in.NodeId, func(n *node) syscall.Errno {
		child, errno := n.Mknod(request(cancel, &in.InHeader), name, in.Mode, in.Rdev, out)
		return r.entry(n, name, child, errno, out)
	})
}

// Mkdir implements fuse.RawFileSystem.
func (r *rawFS) Mkdir(cancel <-chan struct{}, in *fuse.MkdirIn, name string, out *fuse.EntryOut) fuse.Status {
	return r.with(in.NodeId, func(n *node) syscall.Errno {
		child, errno := n.Mkdir(request(cancel, &in.InHeader), name, in.Mode, out)
		return r.entry(n, name, child, errno, out)
	})
}

// Symlink implements fuse.RawFileSystem.
func (r *rawFS) Symlink(cancel <-chan struct{}, h *fuse.InHeader, target, name string, out *fuse.EntryOut) fuse.Status {
	return r.with(h.NodeId, func(n *node) syscall.Errno {
		child, errno := n.Symlink(request(cancel, h), target, name, out)
		return r.entry(n, name, child, errno, out)
	})
}

// Link implements fuse.RawFileSystem: the new name is one more name of
// the target's node.
func (r *rawFS) Link(cancel <-chan struct{}, in *fuse.LinkIn, name string, out *fuse.EntryOut) fuse.Status {
	target := r.u.node(in.Oldnodeid)
	if target == nil {
		return errnoStatus(syscall.ESTALE)
	}
	return r.with(in.NodeId, func(n *node) syscall.Errno {
		child, errno := n.Link(request(cancel, &in.InHeader), target, name, out)
		if errno == 0 && r.u.identity(&out.Attr) == target.ident {
			child = target
		}
		return r.entry(n, name, child, errno, out)
	})
}

// Unlink implements fuse.RawFileSystem.
func (r *rawFS) Unlink(cancel <-chan struct{}, h *fuse.InHeader, name string) fuse.Status {
	return r.with(h.NodeId, func(n *node) syscall.Errno { return r.removed(n, name, n.remove(name, false)) })
}

// Rmdir implements fuse.RawFileSystem.
func (r *rawFS) Rmdir(cancel <-chan struct{}, h *fuse.InHeader, name string) fuse.Status {
	return r.with(h.NodeId, func(n *node) syscall.Errno { return r.removed(n, name, n.remove(name, true)) })
}

// removed drops name from parent's names when its removal succeeded.
func (r *rawFS) removed(parent *node, name string, errno syscall.Errno) syscall.Errno {
	if errno == 0 {
		r.u.unlinked(parent, name)
	}
	return errno
}

// Rename implements fuse.RawFileSystem.
func (r *rawFS) Rename(cancel <-chan struct{}, in *fuse.RenameIn, name, newName string) fuse.Status {
	np := r.u.node(in.Newdir)
	if np == nil {
		return errnoStatus(syscall.ESTALE)
	}
	return r.with(in.NodeId, func(n *node) syscall.Errno {
		errno := n.Rename(request(cancel, &in.InHeader), name, np, newName, in.Flags)
		switch {
		case errno != 0:
		case in.Flags&unix.RENAME_EXCHANGE != 0:
			r.u.exchanged(n, name, np, newName)
		default:
			r.u.renamed(n, name, np, newName)
		}
		return errno
	})
}

// Readlink implements fuse.RawFileSystem.
func (r *rawFS) Readlink(cancel <-chan struct{}, h *fuse.InHeader) ([]byte, fuse.Status) {
	var target []byte
	st := r.with(h.NodeId, func(n *node) (errno syscall.Errno) {
		target, errno = n.Readlink()
		return errno
	})
	return target, st
}

// GetXAttr implements fuse.RawFileSystem.
func (r *rawFS) GetXAttr(cancel <-chan struct{}, h *fuse.InHeader, attr string, dest []byte) (uint32, fuse.Status) {
	var size uint32
	st := r.with(h.NodeId, func(n *node) (errno syscall.Errno) {
		size, errno = n.Getxattr(attr, dest)
		return errno
	})
	return size, st
}

// ListXAttr implements fuse.RawFileSystem.
func (r *rawFS) ListXAttr(cancel <-chan struct{}, h *fuse.InHeader, dest []byte) (uint32, fuse.Status) {
	var size uint32
	st := r.with(h.NodeId, func(n *node) (errno syscall.Errno) {
		size, errno = n.Listxattr(dest)
		return errno
	})
	return size, st
}

// SetXAttr implements fuse.RawFileSystem.
func (r *rawFS) SetXAttr(cancel <-chan struct{}, in *fuse.SetXAttrIn, attr string, data []byte) fuse.Status {
	return r.with(in.NodeId, func(n *node) syscall.Errno { return n.Setxattr(attr, data, in.Flags) })
}

// RemoveXAttr implements fuse.RawFileSystem.
func (r *rawFS) RemoveXAttr(cancel <-chan struct{}, h *fuse.InHeader, attr string) fuse.Status {
	return r.with(h.NodeId, func(n *node) syscall.Errno { return n.Removexattr(attr) })
}

// Create implements fuse.RawFileSystem.
func (r *rawFS) Create(cancel <-chan struct{}, in *fuse.CreateIn, name string, out *fuse.CreateOut) fuse.Status {
	return r.with(in.NodeId, func(n *node) syscall.Errno {
		child, h, errno := n.Create(request(cancel, &in.InHeader), name, in.Flags, in.Mode, &out.EntryOut)
		if errno != 0 {
			return errno
		}
		h.n = r.u.adopt(n, name, child, &out.EntryOut)
		r.opened(h, &out.OpenOut)
		return 0
	})
}

// opened gives the kernel a handle of the open file h.
func (r *rawFS) opened(h *file, out *fuse.OpenOut) {
	out.Fh = r.u.addHandle(h)
	r.u.passThrough(h, out)
}

// Open implements fuse.RawFileSystem.
func (r *rawFS) Open(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	return r.with(in.NodeId, func(n *node) syscall.Errno {
		h, flags, errno := n.Open(request(cancel, &in.InHeader), in.Flags)
		if errno != 0 {
			return errno
		}
		out.OpenFlags = flags
		r.opened(h, out)
		return 0
	})
}

// Read implements fuse.RawFileSystem.
func (r *rawFS) Read(cancel <-chan struct{}, in *fuse.ReadIn, buf []byte) (fuse.ReadResult, fuse.Status) {
	var res fuse.ReadResult
	st := r.withFile(in.Fh, func(h *file) (errno syscall.Errno) {
		res, errno = h.Read(buf, int64(in.Offset))
		return errno
	})
	return res, st
}

// Write implements fuse.RawFileSystem.
func (r *rawFS) Write(cancel <-chan struct{}, in *fuse.WriteIn, data []byte) (uint32, fuse.Status) {
	var written uint32
	st := r.withFile(in.Fh, func(h *file) (errno syscall.Errno) {
		written, errno = h.Write(data, int64(in.Offset))
		return errno
	})
	return written, st
}

// Writev implements fuse.RawFileSystem for a write in one piece; the
// server joins one in several pieces and calls Write.
func (r *rawFS) Writev(cancel <-chan struct{}, in *fuse.WriteIn, data [][]byte) (uint32, fuse.Status) {
	if len(data) != 1 {
		return 0, fuse.ENOSYS
	}
	return r.Write(cancel, in, data[0])
}

// Lseek implements fuse.RawFileSystem (SEEK_DATA and SEEK_HOLE).
func (r *rawFS) Lseek(cancel <-chan struct{}, in *fuse.LseekIn, out *fuse.LseekOut) fuse.Status {
	return r.withFile(in.Fh, func(h *file) (errno syscall.Errno) {
		out.Offset, errno = h.Lseek(in.Offset, in.Whence)
		return errno
	})
}

// Fallocate implements fuse.RawFileSystem.
func (r *rawFS) Fallocate(cancel <-chan struct{}, in *fuse.FallocateIn) fuse.Status {
	return r.withFile(in.Fh, func(h *file) syscall.Errno { return h.Allocate(in.Offset, in.Length, in.Mode) })
}

// Fsync implements fuse.RawFileSystem.
func (r *rawFS) Fsync(cancel <-chan struct{}, in *fuse.FsyncIn) fuse.Status {
	return r.with(in.NodeId, func(n *node) syscall.Errno { return n.Fsync(r.u.handle(in.Fh), in.FsyncFlags) })
}

// Release implements fuse.RawFileSystem.
func (r *rawFS) Release(cancel <-chan struct{}, in *fuse.ReleaseIn) {
	if h := r.u.dropHandle(in.Fh); h != nil {
		h.Release()
	}
}

// Ioctl implements fuse.RawFileSystem: no ioctl reaches a file's
// descriptor (ENOTTY, as for a file that has none).
func (r *rawFS) Ioctl(cancel <-chan struct{}, in *fuse.IoctlIn, inbuf []byte, out *fuse.IoctlOut, outbuf []byte) fuse.Status {
	return errnoStatus(syscall.ENOTTY)
}

// OpenDir implements fuse.RawFileSystem (see rawFS).
func (r *rawFS) OpenDir(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	return fuse.ENOSYS
}

// Flush implements fuse.RawFileSystem (see rawFS).
func (r *rawFS) Flush(cancel <-chan struct{}, in *fuse.FlushIn) fuse.Status { return fuse.ENOSYS }

// ReadDir implements fuse.RawFileSystem.
func (r *rawFS) ReadDir(cancel <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	return r.with(in.NodeId, func(n *node) syscall.Errno { return r.readDir(n, in.Offset, out, false) })
}

// ReadDirPlus implements fuse.RawFileSystem: each entry comes with its
// lookup, as if the kernel had sent one.
func (r *rawFS) ReadDirPlus(cancel <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	return r.with(in.NodeId, func(n *node) syscall.Errno { return r.readDir(n, in.Offset, out, true) })
}

// FsyncDir implements fuse.RawFileSystem.
func (r *rawFS) FsyncDir(cancel <-chan struct{}, in *fuse.FsyncIn) fuse.Status {
	return r.with(in.NodeId, func(n *node) syscall.Errno { return n.Fsync(nil, in.FsyncFlags) })
}

// StatFs implements fuse.RawFileSystem.
func (r *rawFS) StatFs(cancel <-chan struct{}, h *fuse.InHeader, out *fuse.StatfsOut) fuse.Status {
	return r.with(h.NodeId, func(n *node) syscall.Errno { return n.Statfs(out) })
}
