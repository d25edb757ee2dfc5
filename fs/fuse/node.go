package fuse

import (
	"errors"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/acetate/acetate/internal/beneath"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// node is one file or directory of the merged view. Its names and its
// place come from the mount's tree (tree.go); which layer serves it is
// found again at each operation, except for lower, which lookup fills in.
type node struct {
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
	// ds is what the node keeps of its directory, made at first use: most
	// nodes are files, which never need it (a booted systemd looks some
	// 500 up).
	ds atomic.Pointer[dirState]

	// The node in the mount's tree, guarded by union.tree: its node id
	// (0 while the kernel does not know it) and identity, the kernel's
	// count of its lookups, its newest name (parent nil: none left), the
	// children the kernel knows and the most of them at once since the
	// map was made, and what few nodes need beside (nodeExtra).
	nodeID   uint64
	ident    identity
	lookups  uint64
	parent   *node
	name     string
	kids     map[string]*node
	kidsRoom int
	x        *nodeExtra
}

// dirState is what a directory's node keeps of its directory.
type dirState struct {
	// dir holds, once needed, an O_PATH descriptor of the node's
	// directory in the upper directory, so that the names in it are
	// reached without resolving its path again; readers hold the lock
	// while they use it, OnForget closes it.
	dir struct {
		sync.RWMutex
		fd int // 0: not open
		// ino is the inode number of the directory in the upper
		// directory, once known (0: not yet).
		ino uint64
	}

	// cache is what the node knows of its directory as of a generation.
	cache struct {
		sync.Mutex
		gen     uint64 // 0: never filled
		noUpper bool
		listing []fuse.DirEntry
	}
}

// state returns the node's dirState, made at first use.
func (n *node) state() *dirState {
	if d := n.ds.Load(); d != nil {
		return d
	}
	n.ds.CompareAndSwap(nil, new(dirState))
	return n.ds.Load()
}

// lockCache locks the node's cache, renewed first when it is of an older
// generation, and returns its dirState; the caller unlocks the cache. Only
// "nothing in the upper directory" is asked again: looking there is never
// wrong, skipping it must be proven, so a node once found there is not
// looked for again.
func (n *node) lockCache() *dirState {
	d := n.state()
	d.cache.Lock()
	if gen := n.u.gen.Load(); d.cache.gen != gen {
		if d.cache.gen == 0 || d.cache.noUpper {
			d.cache.noUpper = !n.inUpper()
		}
		d.cache.gen = gen
		d.cache.listing = nil
	}
	return d
}

// noUpper reports whether the node has nothing in the upper directory, and
// as of which generation.
func (n *node) noUpper() (bool, uint64) {
	d := n.lockCache()
	defer d.cache.Unlock()
	return d.cache.noUpper, d.cache.gen
}

// upperAt resolves where the node lives, or would live, in the upper
// directory: its name in its parent's directory; the caller closes it.
func (n *node) upperAt() (beneath.At, error) {
	if n.isRoot() {
		return beneath.At{Dir: n.u.upperFd, Name: "."}, nil
	}
	name, parent := n.parentLink()
	if parent == nil {
		return beneath.At{}, syscall.ENOENT // no name left
	}
	return parent.childAt(name)
}

// upperAtKnown is upperAt, but answers ENOENT at once, without a system
// call, when the node's directory is known to have nothing in the upper
// directory (its cached noUpper): a template file in a directory the
// container never changed, the file of most of the requests the kernel
// sends for reads (getxattr of security.capability) and the one of the
// bench's getxattr row, one openat2 fewer each.
func (n *node) upperAtKnown() (beneath.At, error) {
	if !n.isRoot() {
		if _, parent := n.parentLink(); parent != nil {
			if none, _ := parent.noUpper(); none {
				return beneath.At{}, syscall.ENOENT
			}
		}
	}
	return n.upperAt()
}

// inUpper reports whether the node has an entry in the upper directory.
func (n *node) inUpper() bool {
	a, err := n.upperAt()
	if err != nil {
		return false
	}
	defer a.Close()
	var st unix.Stat_t
	return a.Lstat(&st) == nil
}

// childAt resolves where child name of the directory node lives, or would
// live, in the upper directory, through the node's directory descriptor;
// the caller closes it.
func (n *node) childAt(name string) (beneath.At, error) {
	if n.isRoot() {
		return beneath.At{Dir: n.u.upperFd, Name: name}, nil
	}
	d := n.state()
	for {
		d.dir.RLock()
		if fd := d.dir.fd; fd != 0 {
			return beneath.Lend(fd, name, d.dir.RUnlock), nil
		}
		d.dir.RUnlock()
		if err := n.openDir(); err != nil {
			return beneath.At{}, err
		}
	}
}

// openDir opens the node's directory in the upper directory, unless it is
// open. A node whose directory is not there yet (nothing copied up) keeps
// no descriptor: the next use looks again. The descriptor follows the
// directory when it is renamed (through this server, which moves the node
// with it) and fails with ENOENT once it is removed (and the node with it).
//
// The node's path is the tree's, which a rename updates only after the
// directories moved on disk: a node opened in between by its old path
// would get whatever now has that name for good. So the directory opened
// must be the node's own, by inode number, as its lookup or creation saw
// it; otherwise the open is tried again, and then the caller fails with
// EAGAIN rather than keep another directory.
func (n *node) openDir() error {
	d := n.state()
	d.dir.Lock()
	defer d.dir.Unlock()
	for range 100 {
		if d.dir.fd != 0 {
			return nil
		}
		fd, err := beneath.OpenDir(n.u.upperFd, n.rel())
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return err
		}
		if d.dir.ino == 0 || d.dir.ino == st.Ino {
			d.dir.fd, d.dir.ino = fd, st.Ino
			return nil
		}
		unix.Close(fd)
		runtime.Gosched()
	}
	return syscall.EAGAIN
}

// sawUpperDir records the inode number of the node's directory in the
// upper directory, as its lookup or creation found it.
func (n *node) sawUpperDir(st *unix.Stat_t) {
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		n.state().dir.ino = st.Ino
	}
}

// onForget closes the node's directory descriptor once the kernel knows
// the node no more.
func (n *node) onForget() {
	d := n.ds.Load()
	if d == nil {
		return
	}
	d.dir.Lock()
	defer d.dir.Unlock()
	if d.dir.fd != 0 && !n.isRoot() {
		unix.Close(d.dir.fd)
		d.dir.fd = 0
	}
}

// childRel is the path of child name of the directory at rel.
func childRel(rel, name string) string {
	if rel == "" {
		return name
	}
	return rel + "/" + name
}

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

// lookupChild finds child name in the merged view: the upper directory
// first (where a whiteout hides it), then the lower layers.
func (n *node) lookupChild(name string, out *fuse.Attr) (*node, syscall.Errno) {
	if len(name) > 255 {
		return nil, syscall.ENAMETOOLONG
	}
	noUpper, gen := n.noUpper()
	if !noUpper {
		if child, decided, errno := n.lookupUpper(name, out); decided {
			return child, errno
		}
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
	if noUpper && e.Mode&syscall.S_IFMT == syscall.S_IFDIR {
		// Where the parent has nothing in the upper directory, neither
		// has the child, as of the same generation.
		d := child.state()
		d.cache.gen, d.cache.noUpper = gen, true
	}
	return child, 0
}

// lookupUpper finds child name in the upper directory. decided is false
// when the upper directory does not have the name, so the layers below
// answer; a whiteout there decides: ENOENT.
func (n *node) lookupUpper(name string, out *fuse.Attr) (child *node, decided bool, errno syscall.Errno) {
	a, err := n.childAt(name)
	var st unix.Stat_t
	if err == nil {
		defer a.Close()
		err = a.Lstat(&st)
	}
	switch {
	case errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ENOTDIR):
		return nil, false, 0
	case err != nil:
		return nil, true, fs.ToErrno(err)
	case isWhiteout(&st):
		return nil, true, syscall.ENOENT
	}
	n.u.attrFromStat(a, &st, out)
	child = &node{u: n.u}
	child.sawUpperDir(&st)
	switch st.Mode & syscall.S_IFMT {
	case syscall.S_IFDIR:
		if !isOpaque(a) {
			lp := lowerOfChild(a, n.lower, name)
			if e, ok := n.u.lower.Lookup(lp); ok && e.Mode&syscall.S_IFMT == syscall.S_IFDIR {
				child.lower = lp
				out.Nlink = mergedDirLinks
			}
		}
	case syscall.S_IFREG:
		if isMetacopy(a) {
			child.lower = lowerOfChild(a, n.lower, name)
		}
	}
	return child, true, 0
}

// mergedDirLinks is the link count of a directory merged from the upper
// directory and a lower one: as on overlayfs, 1, which find(1) and others
// read as "unknown", never fewer than the subdirectories shown.
const mergedDirLinks = 1

// attrAt fills out with the attributes of the node's upper file a, or
// returns ENOENT when there is none.
func (n *node) attrAt(a beneath.At, out *fuse.Attr) syscall.Errno {
	var st unix.Stat_t
	if err := a.Lstat(&st); err != nil || isWhiteout(&st) {
		return syscall.ENOENT
	}
	fromStat(&st, out)
	out.Ino = n.ident.ino
	if n.lower != "" && st.Mode&unix.S_IFMT == unix.S_IFDIR {
		out.Nlink = mergedDirLinks
	}
	return 0
}

// getattr fills out with the node's attributes.
func (n *node) getattr(out *fuse.Attr) syscall.Errno {
	if n.orphan() {
		return syscall.ENOENT
	}
	a, err := n.upperAt()
	if err == nil {
		defer a.Close()
		if n.attrAt(a, out) == 0 {
			return 0
		}
	}
	if n.lower != "" {
		if e, ok := n.u.lower.Lookup(n.lower); ok {
			attrFromEntry(e, out)
			return 0
		}
	}
	return syscall.ENOENT
}

// getattrVia fills out with the node's attributes, through its open file
// h when there is one.
func (n *node) getattrVia(h *file, out *fuse.Attr) syscall.Errno {
	if h != nil {
		return h.getattr(out)
	}
	return n.getattr(out)
}

func (n *node) list() ([]fuse.DirEntry, syscall.Errno) {
	d := n.lockCache()
	defer d.cache.Unlock()
	if d.cache.listing == nil {
		var up *beneath.At
		if !d.cache.noUpper {
			a, err := n.childAt(".")
			if err != nil && !errors.Is(err, syscall.ENOENT) {
				return nil, fs.ToErrno(err)
			}
			if err == nil {
				defer a.Close()
				up = &a
			}
		}
		list, errno := n.listAt(up)
		if errno != 0 {
			return nil, errno
		}
		d.cache.listing = list
	}
	return d.cache.listing, 0
}

// listAt lists the directory whose lower directory is n.lower and whose
// upper directory, if it has one, is up.
func (n *node) listAt(up *beneath.At) ([]fuse.DirEntry, syscall.Errno) {
	var list []fuse.DirEntry
	seen := map[string]bool{}
	if up != nil {
		var errno syscall.Errno
		if list, errno = n.u.upperEntries(*up, seen); errno != 0 {
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
func (u *union) upperEntries(up beneath.At, seen map[string]bool) ([]fuse.DirEntry, syscall.Errno) {
	d, err := up.Open(unix.O_RDONLY|unix.O_DIRECTORY, 0)
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
		a := beneath.At{Dir: int(d.Fd()), Name: name}
		var st unix.Stat_t
		if err := a.Lstat(&st); err != nil || isWhiteout(&st) {
			continue
		}
		list = append(list, fuse.DirEntry{Name: name, Mode: st.Mode, Ino: u.ino(a, st.Ino)})
	}
	return list, 0
}

// Readlink returns the target of the symbolic link.
func (n *node) Readlink() ([]byte, syscall.Errno) {
	a, err := n.upperAt()
	if err == nil {
		defer a.Close()
		var t string
		if t, err = a.Readlink(); err == nil {
			return []byte(t), 0
		}
	}
	if !errors.Is(err, syscall.ENOENT) && !errors.Is(err, syscall.ENOTDIR) {
		return nil, fs.ToErrno(err)
	}
	if e, ok := n.u.lower.Lookup(n.lower); ok && n.lower != "" {
		return []byte(e.Target), 0
	}
	return nil, syscall.ENOENT
}

// Statfs fills out with the upper directory's filesystem.
func (n *node) Statfs(out *fuse.StatfsOut) syscall.Errno {
	var s unix.Statfs_t
	if err := unix.Fstatfs(n.u.upperFd, &s); err != nil {
		return fs.ToErrno(err)
	}
	out.FromStatfsT((*syscall.Statfs_t)(unsafe.Pointer(&s)))
	return 0
}

// Fsync syncs the open file h, or for directories (fsyncdir) and files
// without an open handle, the upper file if there is one.
func (n *node) Fsync(h *file, flags uint32) syscall.Errno {
	if h != nil {
		return h.Fsync(flags)
	}
	f, err := beneath.Open(n.u.upperFd, n.rel(), unix.O_RDONLY|unix.O_NONBLOCK, 0)
	if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ELOOP) {
		return 0 // nothing in the upper directory, or a symbolic link
	}
	if err != nil {
		return fs.ToErrno(err)
	}
	defer f.Close()
	return fs.ToErrno(f.Sync())
}
