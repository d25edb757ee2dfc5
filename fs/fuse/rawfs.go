package fuse

import (
	"github.com/hanwen/go-fuse/v2/fuse"
)

// noOpendir saves round trips the kernel would otherwise make for every
// directory and every close.
//
// It answers OPENDIR with ENOSYS, which tells the kernel (Linux 5.1+) to
// stop sending OPENDIR and RELEASEDIR and to keep every directory's
// listing cached until the directory changes through the mount. A warm
// walk of a tree then costs the server nothing. Listing requests arrive
// without a handle; each is answered through a handle opened and released
// around it, whose listing is sorted and so gives the same offsets every
// time.
//
// It answers FLUSH with ENOSYS, after which the kernel sends none: the
// server's descriptors need nothing at close but their release.
type noOpendir struct {
	fuse.RawFileSystem
}

// Flush implements fuse.RawFileSystem.
func (noOpendir) Flush(cancel <-chan struct{}, in *fuse.FlushIn) fuse.Status { return fuse.ENOSYS }

// OpenDir implements fuse.RawFileSystem.
func (noOpendir) OpenDir(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	return fuse.ENOSYS
}

// withDir runs fn with a directory handle opened for the request.
func (r noOpendir) withDir(cancel <-chan struct{}, h *fuse.InHeader, fh uint64, fn func(fh uint64) fuse.Status) fuse.Status {
	if fh != 0 {
		return fn(fh)
	}
	var out fuse.OpenOut
	if st := r.RawFileSystem.OpenDir(cancel, &fuse.OpenIn{InHeader: *h}, &out); !st.Ok() {
		return st
	}
	defer r.RawFileSystem.ReleaseDir(&fuse.ReleaseIn{InHeader: *h, Fh: out.Fh})
	return fn(out.Fh)
}

// ReadDir implements fuse.RawFileSystem.
func (r noOpendir) ReadDir(cancel <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	return r.withDir(cancel, &in.InHeader, in.Fh, func(fh uint64) fuse.Status {
		in2 := *in
		in2.Fh = fh
		return r.RawFileSystem.ReadDir(cancel, &in2, out)
	})
}

// ReadDirPlus implements fuse.RawFileSystem.
func (r noOpendir) ReadDirPlus(cancel <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	return r.withDir(cancel, &in.InHeader, in.Fh, func(fh uint64) fuse.Status {
		in2 := *in
		in2.Fh = fh
		return r.RawFileSystem.ReadDirPlus(cancel, &in2, out)
	})
}

// FsyncDir implements fuse.RawFileSystem.
func (r noOpendir) FsyncDir(cancel <-chan struct{}, in *fuse.FsyncIn) fuse.Status {
	return r.withDir(cancel, &in.InHeader, in.Fh, func(fh uint64) fuse.Status {
		in2 := *in
		in2.Fh = fh
		return r.RawFileSystem.FsyncDir(cancel, &in2)
	})
}
