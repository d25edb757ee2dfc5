package fuse

import (
	"context"
	"os"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// file is an open file of the merged view, backed by a file descriptor of
// the upper file or, read-only, of the lower data. It forwards only the
// operations that are safe on an object: no ioctl, no locks (the kernel
// keeps those). It has no flush either: the server answers FLUSH with
// ENOSYS once, and the kernel stops sending one at every close.
type file struct {
	lf *fs.LoopbackFile
	n  *node
	// lower is set when the descriptor reads lower data.
	lower bool
	// backed is set once the kernel reads and writes the file itself
	// (FUSE passthrough, Linux 6.9+), through its node's backing file
	// (handles.go).
	backed bool
}

// openFile opens p as os.OpenFile does, minus what os.OpenFile adds for
// descriptors the runtime poller could wait on: for a file or directory,
// three fcntl calls and an epoll_ctl that fails, on every open.
func openFile(p string, flags int, mode uint32) (*os.File, error) {
	fd, err := syscall.Open(p, flags|syscall.O_CLOEXEC, mode)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	return os.NewFile(uintptr(fd), p), nil
}

// newHandle wraps f, an open file of n, of its lower data when lower is set.
func newHandle(n *node, f *os.File, lower bool) *file {
	if lower {
		n.lowerOpens.Add(1)
	}
	return &file{lf: fs.NewLoopbackFileFromOS(f), n: n, lower: lower}
}

// Read reads from the file at off.
func (f *file) Read(buf []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	return f.lf.Read(context.Background(), buf, off)
}

// Write writes to the file at off.
func (f *file) Write(data []byte, off int64) (uint32, syscall.Errno) {
	if f.lower {
		return 0, syscall.EBADF
	}
	return f.lf.Write(context.Background(), data, off)
}

// Fsync syncs the file.
func (f *file) Fsync(flags uint32) syscall.Errno {
	if f.lower {
		return 0
	}
	return f.lf.Fsync(context.Background(), flags)
}

// Release closes the file.
func (f *file) Release() {
	if f.lower {
		f.n.lowerOpens.Add(-1)
	}
	f.lf.Release(context.Background())
}

// Lseek finds data or a hole from off (SEEK_DATA and SEEK_HOLE).
func (f *file) Lseek(off uint64, whence uint32) (uint64, syscall.Errno) {
	return f.lf.Lseek(context.Background(), off, whence)
}

// Allocate allocates (or punches) the file's blocks (fallocate).
func (f *file) Allocate(off, size uint64, mode uint32) syscall.Errno {
	if f.lower {
		return syscall.EBADF
	}
	return f.lf.Allocate(context.Background(), off, size, mode)
}

// getattr fills out with the node's attributes, or those of the open
// descriptor once the file has no name left.
func (f *file) getattr(out *fuse.Attr) syscall.Errno {
	if errno := f.n.getattr(out); errno != syscall.ENOENT {
		return errno
	}
	var a fuse.AttrOut
	if errno := f.lf.Getattr(context.Background(), &a); errno != 0 {
		return errno
	}
	*out = a.Attr
	out.Ino = f.n.ident.ino
	if f.lower {
		// The lower data keeps its own links; the merged file has none.
		out.Nlink = 0
	}
	return 0
}

// setattr changes the open upper file through its descriptor, whose
// attributes (fstat) are then the node's. A truncate by a caller without
// CAP_FSETID clears the set-id bits, as killSetIDAt does without a handle.
func (f *file) setattr(ctx context.Context, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if errno := f.lf.Setattr(ctx, in, out); errno != 0 {
		return errno
	}
	if killsSetID(in) {
		st := unix.Stat_t{Mode: out.Mode, Gid: out.Gid}
		if mode, drop := callerOf(ctx).withoutSetID(&st, true); drop {
			fd, _ := f.lf.PassthroughFd()
			if err := unix.Fchmod(fd, mode); err != nil {
				return fs.ToErrno(err)
			}
			out.Mode = out.Mode&unix.S_IFMT | mode
		}
	}
	out.Ino = f.n.ident.ino
	return 0
}
