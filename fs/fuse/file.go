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
}

// passthroughFile is a file whose reads and writes the kernel may do
// itself on the backing descriptor (FUSE passthrough, Linux 6.9+).
type passthroughFile struct{ *file }

// handle is implemented by both kinds of open file.
type handle interface{ base() *file }

func (f *file) base() *file { return f }

var (
	_ = (fs.FileReader)((*file)(nil))
	_ = (fs.FileWriter)((*file)(nil))
	_ = (fs.FileFsyncer)((*file)(nil))
	_ = (fs.FileReleaser)((*file)(nil))
	_ = (fs.FileLseeker)((*file)(nil))
	_ = (fs.FileAllocater)((*file)(nil))
	_ = (fs.FileGetattrer)((*file)(nil))
	_ = (fs.FilePassthroughFder)(passthroughFile{})
)

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

// newHandle wraps f; with passthrough the kernel may bypass the server.
func newHandle(n *node, f *os.File, lower, passthrough bool) fs.FileHandle {
	h := &file{lf: fs.NewLoopbackFileFromOS(f), n: n, lower: lower}
	if lower {
		n.lowerOpens.Add(1)
	}
	if passthrough {
		return passthroughFile{h}
	}
	return h
}

// PassthroughFd implements fs.FilePassthroughFder.
func (p passthroughFile) PassthroughFd() (int, bool) { return p.lf.PassthroughFd() }

// Read implements fs.FileReader.
func (f *file) Read(ctx context.Context, buf []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	return f.lf.Read(ctx, buf, off)
}

// Write implements fs.FileWriter.
func (f *file) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	if f.lower {
		return 0, syscall.EBADF
	}
	return f.lf.Write(ctx, data, off)
}

// Fsync implements fs.FileFsyncer.
func (f *file) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	if f.lower {
		return 0
	}
	return f.lf.Fsync(ctx, flags)
}

// Release implements fs.FileReleaser.
func (f *file) Release(ctx context.Context) syscall.Errno {
	if f.lower {
		f.n.lowerOpens.Add(-1)
	}
	return f.lf.Release(ctx)
}

// Lseek implements fs.FileLseeker (SEEK_DATA and SEEK_HOLE).
func (f *file) Lseek(ctx context.Context, off uint64, whence uint32) (uint64, syscall.Errno) {
	return f.lf.Lseek(ctx, off, whence)
}

// Allocate implements fs.FileAllocater.
func (f *file) Allocate(ctx context.Context, off, size uint64, mode uint32) syscall.Errno {
	if f.lower {
		return syscall.EBADF
	}
	return f.lf.Allocate(ctx, off, size, mode)
}

// Getattr implements fs.FileGetattrer: the node's attributes, or those of
// the open descriptor once the file has no name left.
func (f *file) Getattr(ctx context.Context, out *fuse.AttrOut) syscall.Errno {
	return f.getattr(&out.Attr)
}

func (f *file) getattr(out *fuse.Attr) syscall.Errno {
	if errno := f.n.getattr(out); errno != syscall.ENOENT {
		return errno
	}
	var a fuse.AttrOut
	if errno := f.lf.Getattr(context.Background(), &a); errno != 0 {
		return errno
	}
	*out = a.Attr
	out.Ino = f.n.StableAttr().Ino
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
	out.Ino = f.n.StableAttr().Ino
	return 0
}
