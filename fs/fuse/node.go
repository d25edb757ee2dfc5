package fuse

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// node is one file or directory of the merged view. Its name and place come
// from go-fuse's tree; which layer serves it is found again at each
// operation, except for lower, which lookup fills in.
type node struct {
	fs.Inode
	u *union
	// lower is the path below that shows through this node: the file's data
	// when nothing is in the upper directory or the upper file is a
	// metacopy, the directory merged under an upper directory; "" when
	// nothing below shows (a new or opaque directory).
	lower string
	// lowerOpens counts open handles backed by lower data, which the kernel
	// may be passing through to an object.
	lowerOpens atomic.Int32
	// isDir is set by rename on the nodes it looks up.
	isDir bool

	// cache is what the node knows of its directory as of a generation.
	cache struct {
		sync.Mutex
		gen     uint64 // 0: never filled
		noUpper bool
		listing []fuse.DirEntry
	}
}

// lockCache locks the node's cache, renewed first when it is of an older
// generation; the caller unlocks it. Only "nothing in the upper directory"
// is asked again: looking there is never wrong, skipping it must be
// proven, so a node once found there is not looked for again.
func (n *node) lockCache() {
	n.cache.Lock()
	if gen := n.u.gen.Load(); n.cache.gen != gen {
		if n.cache.gen == 0 || n.cache.noUpper {
			var st syscall.Stat_t
			n.cache.noUpper = syscall.Lstat(n.upperPath(), &st) != nil
		}
		n.cache.gen = gen
		n.cache.listing = nil
	}
}

// noUpper reports whether the node has nothing in the upper directory, and
// as of which generation.
func (n *node) noUpper() (bool, uint64) {
	n.lockCache()
	defer n.cache.Unlock()
	return n.cache.noUpper, n.cache.gen
}

var (
	_ = (fs.NodeLookuper)((*node)(nil))
	_ = (fs.NodeGetattrer)((*node)(nil))
	_ = (fs.NodeOpendirHandler)((*node)(nil))
	_ = (fs.NodeReadlinker)((*node)(nil))
	_ = (fs.NodeStatfser)((*node)(nil))
	_ = (fs.NodeFsyncer)((*node)(nil))
)

// rel is the node's path relative to the mount's root ("" for the root;
// a path that does not exist once the node has no name left).
func (n *node) rel() string { return n.Path(n.Root()) }

// orphan reports whether the node has no name left (unlinked while open).
func (n *node) orphan() bool {
	_, parent := n.Parent()
	return parent == nil && !n.IsRoot()
}

// upperPath is where the node lives, or would live, in the upper directory.
func (n *node) upperPath() string { return filepath.Join(n.u.upper, n.rel()) }

// childLower is the lower path of child name when nothing in the upper
// directory redirects it, "" when nothing below shows.
func (n *node) childLower(name string) string {
	switch n.lower {
	case "":
		return ""
	case "/":
		return "/" + name
	}
	// A name from the kernel has no "/" and is not "." or "..": the
	// joined path is clean already.
	return n.lower + "/" + name
}

// lowerHas reports whether something below shows at child name.
func (n *node) lowerHas(name string) bool {
	lp := n.childLower(name)
	if lp == "" {
		return false
	}
	_, ok := n.u.lower.Lookup(lp)
	return ok
}

// Lookup implements fs.NodeLookuper.
func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	child, errno := n.lookupChild(name, &out.Attr)
	if errno != 0 {
		return nil, errno
	}
	return n.NewInode(ctx, child, n.u.stableAttr(&out.Attr)), 0
}

// lookupChild finds child name in the merged view: the upper directory
// first (where a whiteout hides it), then the lower layers.
func (n *node) lookupChild(name string, out *fuse.Attr) (*node, syscall.Errno) {
	if len(name) > 255 {
		return nil, syscall.ENAMETOOLONG
	}
	var up string
	var st syscall.Stat_t
	var err error = syscall.ENOENT
	noUpper, gen := n.noUpper()
	if !noUpper {
		up = filepath.Join(n.upperPath(), name)
		err = syscall.Lstat(up, &st)
	}
	switch {
	case err == nil:
		if isWhiteout(&st) {
			return nil, syscall.ENOENT
		}
		n.u.attrFromStat(up, &st, out)
		child := &node{u: n.u}
		switch st.Mode & syscall.S_IFMT {
		case syscall.S_IFDIR:
			if !isOpaque(up) {
				lp := lowerOfChild(up, n.lower, name)
				if e, ok := n.u.lower.Lookup(lp); ok && e.Mode&syscall.S_IFMT == syscall.S_IFDIR {
					child.lower = lp
				}
			}
		case syscall.S_IFREG:
			if isMetacopy(up) {
				child.lower = lowerOfChild(up, n.lower, name)
			}
		}
		return child, 0
	case !errors.Is(err, syscall.ENOENT) && !errors.Is(err, syscall.ENOTDIR):
		return nil, fs.ToErrno(err)
	}
	lp := n.childLower(name)
	if lp == "" {
		return nil, syscall.ENOENT
	}
	e, ok := n.u.lower.Lookup(lp)
	if !ok {
		return nil, syscall.ENOENT
	}
	attrFromEntry(e, out)
	child := &node{u: n.u, lower: lp}
	if noUpper {
		// Where the parent has nothing in the upper directory, neither
		// has the child, as of the same generation.
		child.cache.gen, child.cache.noUpper = gen, true
	}
	return child, 0
}

// getattr fills out with the node's attributes.
func (n *node) getattr(out *fuse.Attr) syscall.Errno {
	if n.orphan() {
		return syscall.ENOENT
	}
	var st syscall.Stat_t
	err := syscall.Lstat(n.upperPath(), &st)
	if err == nil && !isWhiteout(&st) {
		out.FromStat(&st)
		out.Ino = n.StableAttr().Ino
		return 0
	}
	if n.lower != "" {
		if e, ok := n.u.lower.Lookup(n.lower); ok {
			attrFromEntry(e, out)
			return 0
		}
	}
	return syscall.ENOENT
}

// Getattr implements fs.NodeGetattrer.
func (n *node) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if h, ok := fh.(handle); ok {
		return h.base().getattr(&out.Attr)
	}
	return n.getattr(&out.Attr)
}

func (n *node) list() ([]fuse.DirEntry, syscall.Errno) {
	n.lockCache()
	defer n.cache.Unlock()
	if n.cache.listing == nil {
		up := "" // nothing to list in the upper directory
		if !n.cache.noUpper {
			up = n.upperPath()
		}
		list, errno := n.listAt(up)
		if errno != 0 {
			return nil, errno
		}
		n.cache.listing = list
	}
	return n.cache.listing, 0
}

// listAt lists the directory whose upper directory is up ("" for none) and
// whose lower directory is n.lower.
func (n *node) listAt(up string) ([]fuse.DirEntry, syscall.Errno) {
	var list []fuse.DirEntry
	seen := map[string]bool{}
	if up != "" {
		var errno syscall.Errno
		if list, errno = n.u.upperEntries(up, seen); errno != 0 {
			return nil, errno
		}
	}
	merged := len(list) > 0
	if n.lower != "" {
		for _, name := range n.u.lower.ReadDir(n.lower) {
			if seen[name] {
				continue
			}
			e, _ := n.u.lower.Lookup(n.childLower(name))
			list = append(list, fuse.DirEntry{Name: name, Mode: e.Mode, Ino: e.Ino})
		}
	}
	if merged { // the lower names come sorted
		slices.SortFunc(list, func(a, b fuse.DirEntry) int { return strings.Compare(a.Name, b.Name) })
	}
	return list, 0
}

// upperEntries lists the upper directory up, if there is one, without its
// whiteouts, and marks every name it holds in seen.
func (u *union) upperEntries(up string, seen map[string]bool) ([]fuse.DirEntry, syscall.Errno) {
	d, err := openFile(up, os.O_RDONLY|syscall.O_DIRECTORY, 0)
	if errors.Is(err, syscall.ENOENT) {
		return nil, 0
	}
	if err != nil {
		return nil, fs.ToErrno(err)
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, fs.ToErrno(err)
	}
	var list []fuse.DirEntry
	for _, name := range names {
		seen[name] = true
		var st unix.Stat_t
		if err := unix.Fstatat(int(d.Fd()), name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			continue
		}
		if st.Mode&syscall.S_IFMT == syscall.S_IFCHR && st.Rdev == 0 {
			continue
		}
		list = append(list, fuse.DirEntry{Name: name, Mode: st.Mode, Ino: u.ino(filepath.Join(up, name), st.Ino)})
	}
	return list, 0
}

// Readlink implements fs.NodeReadlinker.
func (n *node) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	up := n.upperPath()
	if t, err := os.Readlink(up); err == nil {
		return []byte(t), 0
	} else if !errors.Is(err, syscall.ENOENT) {
		return nil, fs.ToErrno(err)
	}
	if e, ok := n.u.lower.Lookup(n.lower); ok && n.lower != "" {
		return []byte(e.Target), 0
	}
	return nil, syscall.ENOENT
}

// Statfs implements fs.NodeStatfser with the upper directory's filesystem.
func (n *node) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	var s syscall.Statfs_t
	if err := syscall.Statfs(n.u.upper, &s); err != nil {
		return fs.ToErrno(err)
	}
	out.FromStatfsT(&s)
	return 0
}

// Fsync implements fs.NodeFsyncer for directories (fsyncdir) and for files
// without an open handle: the upper file, if any, is synced.
func (n *node) Fsync(ctx context.Context, fh fs.FileHandle, flags uint32) syscall.Errno {
	if h, ok := fh.(fs.FileFsyncer); ok {
		return h.Fsync(ctx, flags)
	}
	f, err := openFile(n.upperPath(), os.O_RDONLY, 0)
	if errors.Is(err, syscall.ENOENT) {
		return 0
	}
	if err != nil {
		return fs.ToErrno(err)
	}
	defer f.Close()
	return fs.ToErrno(f.Sync())
}
