package fuse

import (
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/acetate/acetate/internal/beneath"
	"github.com/acetate/acetate/layers"
	"golang.org/x/sys/unix"
)

// DirLower serves lower layers that are plain directories, merged the way
// overlayfs merges its lowerdir list: the first directory is the top
// layer; a character device 0/0 is a whiteout that hides the name in the
// layers below it; a directory with trusted.overlay.opaque=y (or
// user.overlay.opaque=y) hides the directories of the same name below it;
// below a directory with trusted.overlay.redirect (or user.overlay.
// redirect), as overlayfs writes for a renamed directory, the layers
// further down are merged from the redirect's path. Hardlinks are links
// within one layer. A metacopy file (trusted.overlay.metacopy) shows its own
// metadata and the data of the file below, at its redirect or its path.
//
// Inode numbers are derived, not allocated: a file's number is its inode
// number in its layer with the layer's position+1 in bits 48 to 62, so the
// same number in two layers shows as two, a file keeps its number across
// remounts with the same lowerdir list, and no number has bit 63, which
// upper files use. A file on another device than its layer's root, or with
// an inode number of 2^48 or more, gets a number from a counter instead,
// stable only while mounted.
//
// Layers must not change while mounted: answers are cached.
type DirLower struct {
	dirs []string // top first
	fds  []int    // O_PATH descriptors of dirs
	devs []uint64 // st_dev of dirs

	mu      sync.Mutex
	entries map[stackPath]*dirEntry // nil when absent
	lists   map[string][]string
	links   []map[uint64][]string // per layer, built on first use
	other   map[[3]uint64]uint64  // (layer, dev, ino) -> counted number
}

// stackPath is a merged path in the stack of the layers from one on.
type stackPath struct {
	path string
	from int
}

// dirEntry is one merged path: where it comes from and, for a directory,
// which layers' directories merge into it.
type dirEntry struct {
	Entry
	// layer and at are the layer the entry comes from and its path there,
	// which differs from the merged path below a redirected directory.
	layer  int
	at     string
	stIno  uint64
	merged []layerDir
	// data is where a file's data is: at the file itself, or for a
	// metacopy file at the file below.
	data layerDir
}

// layerDir is a path in one layer: a directory that is part of a merged
// directory, or where a file is.
type layerDir struct {
	layer int
	path  string
}

var _ Lower = (*DirLower)(nil)

const (
	// layerShift is where the layer's position starts in an inode number.
	layerShift = 48
	// countedSpace is the layer field of counted inode numbers.
	countedSpace = 1<<(63-layerShift) - 1
	// maxLayers is how many layers derived numbers have room for.
	maxLayers = countedSpace - 1
)

// NewDirLower opens the directories dirs, the top layer first.
func NewDirLower(dirs []string) (*DirLower, error) {
	if len(dirs) == 0 {
		return nil, errors.New("lower directories: none given")
	}
	if len(dirs) > maxLayers {
		return nil, fmt.Errorf("lower directories: %d given, at most %d supported", len(dirs), maxLayers)
	}
	l := &DirLower{
		entries: map[stackPath]*dirEntry{}, lists: map[string][]string{},
		links: make([]map[uint64][]string, len(dirs)), other: map[[3]uint64]uint64{},
	}
	for _, d := range dirs {
		fd, err := unix.Open(d, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("lower directory %s: %w", d, err)
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			l.Close()
			return nil, fmt.Errorf("lower directory %s: %w", d, err)
		}
		l.dirs, l.fds, l.devs = append(l.dirs, d), append(l.fds, fd), append(l.devs, st.Dev)
	}
	return l, nil
}

// Close releases the layers' descriptors.
func (l *DirLower) Close() error {
	for _, fd := range l.fds {
		unix.Close(fd)
	}
	l.fds = nil
	return nil
}

// rel is p relative to a layer's root, for the *at calls.
func rel(p string) string {
	if p == "/" {
		return "."
	}
	return p[1:]
}

// Lookup implements Lower.
func (l *DirLower) Lookup(p string) (*Entry, bool) {
	e := l.lookup(p)
	if e == nil {
		return nil, false
	}
	return &e.Entry, true
}

func (l *DirLower) lookup(p string) *dirEntry { return l.lookupFrom(stackPath{p, 0}) }

// lookupFrom finds sp.path in the layers from sp.from on, caching the
// answer.
func (l *DirLower) lookupFrom(sp stackPath) *dirEntry {
	if !strings.HasPrefix(sp.path, "/") || sp.from >= len(l.dirs) {
		return nil
	}
	l.mu.Lock()
	e, ok := l.entries[sp]
	l.mu.Unlock()
	if ok {
		return e
	}
	e = l.resolve(sp)
	l.mu.Lock()
	l.entries[sp] = e
	l.mu.Unlock()
	return e
}

// resolve finds sp.path in the layers from sp.from on: the topmost layer
// that has it, unless a whiteout above hides it; for a directory, also the
// directories below it that merge into it, down to an opaque one. Below a
// directory with an overlayfs redirect, the layers further down are
// searched at the redirect's path.
func (l *DirLower) resolve(sp stackPath) *dirEntry {
	var candidates []layerDir
	if sp.path == "/" {
		for i := sp.from; i < len(l.dirs); i++ {
			candidates = append(candidates, layerDir{i, "/"})
		}
	} else {
		parent := l.lookupFrom(stackPath{path.Dir(sp.path), sp.from})
		if parent == nil {
			return nil
		}
		for _, d := range parent.merged {
			candidates = append(candidates, layerDir{d.layer, path.Join(d.path, path.Base(sp.path))})
		}
	}
	var e *dirEntry
	for _, c := range candidates {
		var st unix.Stat_t
		if err := l.lstat(c, &st); err != nil {
			continue
		}
		isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
		if e == nil {
			if st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0 {
				return nil
			}
			e = l.entry(c, &st)
			if !isDir {
				l.findData(e, sp)
				return e
			}
		} else if !isDir {
			break
		}
		e.merged = append(e.merged, c)
		if c.path == "/" {
			continue
		}
		if l.opaque(c) {
			break
		}
		if target, ok := l.redirect(c); ok {
			if below := l.lookupFrom(stackPath{target, c.layer + 1}); below != nil {
				e.merged = append(e.merged, below.merged...)
			}
			break
		}
	}
	return e
}

// findData sets where the data of file e, found at merged path sp, is:
// its own, or for an overlayfs metacopy file the file below at its
// redirect or at the same path.
func (l *DirLower) findData(e *dirEntry, sp stackPath) {
	c := layerDir{e.layer, e.at}
	e.data = c
	if e.Mode&unix.S_IFMT != unix.S_IFREG || !l.hasAny(c, xattrMetacopy, "user.overlay.metacopy") {
		return
	}
	target, ok := l.redirect(c)
	if !ok {
		target = sp.path
	}
	if d := l.lookupFrom(stackPath{target, e.layer + 1}); d != nil && d.Mode&unix.S_IFMT == unix.S_IFREG {
		e.data = d.data
	}
}

// at resolves c in its layer, never following a symbolic link (a layer
// may hold links to host paths, as an image's /etc/alternatives does);
// the caller closes it.
func (l *DirLower) at(c layerDir) (beneath.At, error) {
	return beneath.Resolve(l.fds[c.layer], rel(c.path))
}

// lstat stats c.
func (l *DirLower) lstat(c layerDir, st *unix.Stat_t) error {
	a, err := l.at(c)
	if err != nil {
		return err
	}
	defer a.Close()
	return a.Lstat(st)
}

// xattr returns the value of the first of the xattrs names that c has.
func (l *DirLower) xattr(c layerDir, names ...string) (string, bool) {
	a, err := l.at(c)
	if err != nil {
		return "", false
	}
	defer a.Close()
	for _, name := range names {
		if v, ok := a.Xattr(name); ok {
			return v, true
		}
	}
	return "", false
}

// hasAny reports whether c has one of the xattrs names.
func (l *DirLower) hasAny(c layerDir, names ...string) bool {
	_, ok := l.xattr(c, names...)
	return ok
}

// redirect returns the path, in the layers below, that directory c
// continues at, from its trusted.overlay.redirect (or user.overlay.
// redirect) xattr.
func (l *DirLower) redirect(c layerDir) (string, bool) {
	r, ok := l.xattr(c, xattrRedirect, "user.overlay.redirect")
	switch {
	case !ok:
		return "", false
	case strings.HasPrefix(r, "/"):
		return path.Clean(r), true
	}
	return path.Join(path.Dir(c.path), r), true
}

// opaque reports whether directory c hides the layers below.
func (l *DirLower) opaque(c layerDir) bool {
	v, ok := l.xattr(c, xattrOpaque, "user.overlay.opaque")
	return ok && v == "y"
}

// entry makes the entry found at c with stat st.
func (l *DirLower) entry(c layerDir, st *unix.Stat_t) *dirEntry {
	e := &dirEntry{layer: c.layer, at: c.path, stIno: st.Ino, Entry: Entry{
		Mode: st.Mode, UID: st.Uid, GID: st.Gid, Size: st.Size, Mtime: st.Mtim.Nano(),
		Rdev: st.Rdev, Nlink: uint32(st.Nlink), Ino: l.ino(c.layer, st),
	}}
	a, err := l.at(c)
	if err != nil {
		return e
	}
	defer a.Close()
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		e.Target, _ = a.Readlink()
	}
	names, _ := a.Listxattr()
	for _, stored := range names {
		name, ok := ownXattr(stored)
		if !ok || strings.HasPrefix(name, "user.overlay.") {
			continue
		}
		if v, ok := a.Xattr(stored); ok {
			e.Xattrs = append(e.Xattrs, layers.Xattr{Name: name, Value: []byte(v)})
		}
	}
	slices.SortFunc(e.Xattrs, func(a, b layers.Xattr) int { return strings.Compare(a.Name, b.Name) })
	return e
}

// ino is the merged view's inode number of the file with stat st in layer
// i; see DirLower.
func (l *DirLower) ino(i int, st *unix.Stat_t) uint64 {
	if st.Dev == l.devs[i] && st.Ino < 1<<layerShift {
		return uint64(i+1)<<layerShift | st.Ino
	}
	key := [3]uint64{uint64(i), st.Dev, st.Ino}
	l.mu.Lock()
	defer l.mu.Unlock()
	n, ok := l.other[key]
	if !ok {
		n = countedSpace<<layerShift | uint64(len(l.other)+1)
		l.other[key] = n
	}
	return n
}

// ReadDir implements Lower: the names of the merged directory p, without
// whiteouts, sorted.
func (l *DirLower) ReadDir(p string) []string {
	l.mu.Lock()
	names, ok := l.lists[p]
	l.mu.Unlock()
	if ok {
		return names
	}
	e := l.lookup(p)
	if e == nil || e.merged == nil {
		return nil
	}
	seen := map[string]bool{}
	for _, d := range e.merged {
		for _, name := range l.readLayerDir(d.layer, d.path) {
			if seen[name] {
				continue
			}
			seen[name] = true
			if l.lookup(path.Join(p, name)) != nil {
				names = append(names, name)
			}
		}
	}
	slices.Sort(names)
	l.mu.Lock()
	l.lists[p] = names
	l.mu.Unlock()
	return names
}

// readLayerDir lists directory p of layer i.
func (l *DirLower) readLayerDir(i int, p string) []string {
	f, err := beneath.Open(l.fds[i], rel(p), unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil
	}
	defer f.Close()
	names, _ := f.Readdirnames(-1)
	return names
}

// Links implements Lower: the merged paths of p's hardlink group in its
// layer that show that same file, sorted.
func (l *DirLower) Links(p string) []string {
	e := l.lookup(p)
	if e == nil {
		return nil
	}
	if e.Mode&unix.S_IFMT != unix.S_IFREG || e.Nlink < 2 {
		return []string{p}
	}
	var out []string
	for _, other := range l.layerLinks(e.layer)[e.stIno] {
		if o := l.lookup(other); o != nil && o.Ino == e.Ino {
			out = append(out, other)
		}
	}
	if !slices.Contains(out, p) {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// layerLinks indexes the regular files of layer i that have more than one
// link by inode number, walking the layer once.
func (l *DirLower) layerLinks(i int) map[uint64][]string {
	l.mu.Lock()
	idx := l.links[i]
	l.mu.Unlock()
	if idx != nil {
		return idx
	}
	idx = map[uint64][]string{}
	var walk func(dir string)
	walk = func(dir string) {
		for _, name := range l.readLayerDir(i, dir) {
			p := path.Join(dir, name)
			var st unix.Stat_t
			if l.lstat(layerDir{i, p}, &st) != nil {
				continue
			}
			switch {
			case st.Mode&unix.S_IFMT == unix.S_IFDIR:
				walk(p)
			case st.Mode&unix.S_IFMT == unix.S_IFREG && st.Nlink > 1:
				idx[st.Ino] = append(idx[st.Ino], p)
			}
		}
	}
	walk("/")
	l.mu.Lock()
	l.links[i] = idx
	l.mu.Unlock()
	return idx
}

// Open implements Lower: the file at p in the layer it comes from.
func (l *DirLower) Open(p string) (*os.File, error) {
	e := l.lookup(p)
	if e == nil || e.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, fmt.Errorf("lower file %s: %w", p, syscall.ENOENT)
	}
	d := e.data
	f, err := beneath.Open(l.fds[d.layer], rel(d.path), unix.O_RDONLY|unix.O_NOATIME, 0)
	if errors.Is(err, unix.EPERM) {
		f, err = beneath.Open(l.fds[d.layer], rel(d.path), unix.O_RDONLY, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("lower file %s in %s: %w", p, l.dirs[d.layer], err)
	}
	return f, nil
}
