package fuse

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"syscall"

	"github.com/acetate/acetate/layers"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// StoreLower serves a template's stack of layers from the store: metadata
// from the merged manifests, held in memory, and file data from the
// objects.
type StoreLower struct {
	store    *layers.Store
	entries  []Entry
	digests  []digest.Digest
	index    map[string]int
	children map[string][]string
	groups   map[uint64][]string // ino -> paths, for hardlink groups only
}

var _ Lower = (*StoreLower)(nil)

// firstLowerIno is the inode number of the first manifest entry; 1 is the
// FUSE root's node id and never an inode number of ours.
const firstLowerIno = 2

// NewStoreLower reads the layers of stack (bottom first) from store and
// merges them.
func NewStoreLower(store *layers.Store, stack []digest.Digest) (*StoreLower, error) {
	return newStoreLower(store, stack, store.ReadLayer)
}

// newStoreLower is NewStoreLower with the manifests read by read.
func newStoreLower(store *layers.Store, stack []digest.Digest, read func(digest.Digest) (*layers.Manifest, error)) (*StoreLower, error) {
	ms := make([]*layers.Manifest, len(stack))
	for i, d := range stack {
		m, err := read(d)
		if err != nil {
			return nil, fmt.Errorf("fuse lower: %w", err)
		}
		ms[i] = m
	}
	merged := layers.Merge(ms)
	if len(merged) == 0 || merged[0].Path != "/" {
		return nil, fmt.Errorf("fuse lower: layers %v have no root directory", stack)
	}
	l := &StoreLower{
		store:    store,
		entries:  make([]Entry, len(merged)),
		digests:  make([]digest.Digest, len(merged)),
		index:    make(map[string]int, len(merged)),
		children: map[string][]string{},
		groups:   map[uint64][]string{},
	}
	for i := range merged {
		l.index[merged[i].Path] = i
	}
	subdirs := map[string]uint32{}
	for i := range merged {
		e := &merged[i]
		l.digests[i] = e.Digest
		l.entries[i] = Entry{
			Mode: modeOf(e), UID: e.UID, GID: e.GID, Size: e.Size, Mtime: e.Mtime,
			Rdev: unix.Mkdev(e.Major, e.Minor), Nlink: 1, Ino: uint64(i) + firstLowerIno,
			Target: e.Target, Xattrs: e.Xattrs,
		}
		if e.Path == "/" {
			continue
		}
		parent := layers.Parent(e.Path)
		l.children[parent] = append(l.children[parent], filepath.Base(e.Path))
		if e.Type == layers.TypeDir {
			subdirs[parent]++
		}
		if e.LinkTo != "" {
			leader := l.index[e.LinkTo]
			ino := uint64(leader) + firstLowerIno
			l.entries[i].Ino = ino
			if l.groups[ino] == nil {
				l.groups[ino] = []string{e.LinkTo}
			}
			l.groups[ino] = append(l.groups[ino], e.Path)
		}
	}
	for _, paths := range l.groups {
		for _, p := range paths {
			l.entries[l.index[p]].Nlink = uint32(len(paths))
		}
	}
	for i := range merged {
		if merged[i].Type == layers.TypeDir {
			l.entries[i].Nlink = 2 + subdirs[merged[i].Path]
		}
	}
	return l, nil
}

// Lookup implements Lower.
func (l *StoreLower) Lookup(path string) (*Entry, bool) {
	i, ok := l.index[path]
	if !ok {
		return nil, false
	}
	return &l.entries[i], true
}

// ReadDir implements Lower.
func (l *StoreLower) ReadDir(path string) []string { return l.children[path] }

// Links implements Lower.
func (l *StoreLower) Links(path string) []string {
	e, ok := l.Lookup(path)
	if !ok {
		return nil
	}
	if g := l.groups[e.Ino]; g != nil {
		return g
	}
	return []string{path}
}

// objectRedirect matches the redirect overlayfs metacopy files of the
// overlay driver carry: the object's path below the objects directory.
var objectRedirect = regexp.MustCompile(`^/[0-9a-f]{2}/[0-9a-f]{64}$`)

// Open implements Lower: it opens the object of the file at path read-only.
func (l *StoreLower) Open(path string) (*os.File, error) {
	var file string
	if i, ok := l.index[path]; ok && l.entries[i].Mode&syscall.S_IFMT == syscall.S_IFREG {
		file = l.store.ObjectFile(l.digests[i])
	} else if objectRedirect.MatchString(path) {
		file = filepath.Join(l.store.ObjectsDir(), path)
	} else {
		return nil, fmt.Errorf("lower file %s: %w", path, syscall.ENOENT)
	}
	f, err := openFile(file, os.O_RDONLY|syscall.O_NOATIME, 0)
	if err != nil {
		f, err = openFile(file, os.O_RDONLY, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("lower file %s: %w", path, err)
	}
	return f, nil
}

var typeBits = map[layers.Type]uint32{
	layers.TypeDir: syscall.S_IFDIR, layers.TypeReg: syscall.S_IFREG, layers.TypeSymlink: syscall.S_IFLNK,
	layers.TypeChar: syscall.S_IFCHR, layers.TypeBlock: syscall.S_IFBLK, layers.TypeFifo: syscall.S_IFIFO,
	layers.TypeSocket: syscall.S_IFSOCK,
}

func modeOf(e *layers.Entry) uint32 { return typeBits[e.Type] | e.Mode&07777 }
