package fuse

import (
	"context"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// dirHandle is an open directory: its merged listing, taken at the first
// read (the kernel often has the listing cached and reads nothing).
type dirHandle struct {
	n    *node
	list fs.DirStream
}

// stream lists the directory on first use.
func (d *dirHandle) stream() (fs.DirStream, syscall.Errno) {
	if d.list == nil {
		list, errno := d.n.list()
		if errno != 0 {
			return nil, errno
		}
		d.list = fs.NewListDirStream(list)
	}
	return d.list, 0
}

var (
	_ = (fs.FileReaddirenter)((*dirHandle)(nil))
	_ = (fs.FileSeekdirer)((*dirHandle)(nil))
	_ = (fs.FileReleasedirer)((*dirHandle)(nil))
	_ = (fs.FileFsyncdirer)((*dirHandle)(nil))
)

// OpendirHandle implements fs.NodeOpendirHandler: the upper directory's
// entries without whiteouts, then those below that the upper directory
// does not name, sorted by name so that offsets stay stable. The kernel
// keeps the listing cached (FOPEN_CACHE_DIR) until the directory changes
// through this mount, which is the only way it changes.
func (n *node) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	return &dirHandle{n: n}, fuse.FOPEN_CACHE_DIR | fuse.FOPEN_KEEP_CACHE, 0
}

// Readdirent implements fs.FileReaddirenter.
func (d *dirHandle) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	list, errno := d.stream()
	if errno != 0 || !list.HasNext() {
		return nil, errno
	}
	e, errno := list.Next()
	return &e, errno
}

// Seekdir implements fs.FileSeekdirer.
func (d *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	list, errno := d.stream()
	if errno != 0 {
		return errno
	}
	return list.(fs.FileSeekdirer).Seekdir(ctx, off)
}

// Releasedir implements fs.FileReleasedirer.
func (d *dirHandle) Releasedir(ctx context.Context, flags uint32) {}

// Fsyncdir implements fs.FileFsyncdirer.
func (d *dirHandle) Fsyncdir(ctx context.Context, flags uint32) syscall.Errno {
	return d.n.Fsync(ctx, nil, flags)
}
