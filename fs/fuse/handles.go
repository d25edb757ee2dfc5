package fuse

import (
	"slices"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// The mount's open files: the file handle numbers the kernel holds, and
// the passthrough backing files registered for their nodes. Guarded by
// union.tree, as the nodes' names are.

// addHandle gives h, an open file of its node, a file handle number.
func (u *union) addHandle(h *file) uint64 {
	u.tree.Lock()
	defer u.tree.Unlock()
	x := h.n.extra()
	x.opens = append(x.opens, h)
	if k := len(u.freeFhs); k > 0 {
		fh := u.freeFhs[k-1]
		u.freeFhs = u.freeFhs[:k-1]
		u.handles[fh] = h
		return fh
	}
	if len(u.handles) == 0 {
		u.handles = []*file{nil} // 0 is no handle
	}
	u.handles = append(u.handles, h)
	return uint64(len(u.handles) - 1)
}

// handle returns the open file of handle fh, nil for none.
func (u *union) handle(fh uint64) *file {
	u.tree.Lock()
	defer u.tree.Unlock()
	return slot(u.handles, fh)
}

// firstOpen returns an open file of n, nil when none is open: the kernel
// asks a file's attributes without its handle even while it is open, and
// an open file unlinked has them only from its descriptor.
func (n *node) firstOpen() *file {
	n.u.tree.Lock()
	defer n.u.tree.Unlock()
	if n.x == nil || len(n.x.opens) == 0 {
		return nil
	}
	return n.x.opens[0]
}

// dropHandle takes handle fh back (RELEASE) and returns its open file, nil
// for none; the node's backing file goes with its last handle passing
// through to it.
func (u *union) dropHandle(fh uint64) *file {
	u.tree.Lock()
	defer u.tree.Unlock()
	h := slot(u.handles, fh)
	if h == nil {
		return nil
	}
	u.handles[fh] = nil
	u.freeFhs = append(u.freeFhs, fh)
	x := h.n.extra()
	if i := slices.Index(x.opens, h); i >= 0 {
		x.opens = slices.Delete(x.opens, i, i+1)
	}
	if h.backed {
		if x.backingRefs--; x.backingRefs == 0 {
			if s := u.server.Load(); s != nil {
				s.UnregisterBackingFd(x.backing)
			}
			x.backing = 0
		}
	}
	h.n.trimExtra()
	return h
}

// passThrough has the kernel read and write the open file h itself, on its
// descriptor, when the kernel offers passthrough: out gets the node's
// backing file, registered at the first such open. Every open of one
// kernel inode passes through to the same backing file (see upperHandle).
func (u *union) passThrough(h *file, out *fuse.OpenOut) {
	s := u.server.Load()
	if s == nil || !u.passthrough.Load() {
		return
	}
	u.tree.Lock()
	defer u.tree.Unlock()
	x := h.n.extra()
	if x.backing == 0 {
		fd, ok := h.lf.PassthroughFd()
		if !ok {
			return
		}
		id, errno := s.RegisterBackingFd(&fuse.BackingMap{Fd: int32(fd)})
		if errno != 0 {
			u.passthrough.Store(false) // not root, or no CAP_SYS_ADMIN
			return
		}
		x.backing = id
	}
	x.backingRefs++
	h.backed = true
	out.BackingID = x.backing
	out.OpenFlags = out.OpenFlags&^fuse.FOPEN_KEEP_CACHE | fuse.FOPEN_PASSTHROUGH
}
