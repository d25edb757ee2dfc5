package fuse

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// union is the state one mount shares between its nodes.
type union struct {
	lower Lower
	// upper and work are absolute; work is on upper's filesystem and holds
	// files being made before they are renamed into place.
	upper, work string
	readOnly    bool
	// passthrough is set when the kernel offers FUSE passthrough.
	passthrough atomic.Bool

	// mu serializes every change to the upper directory.
	mu sync.Mutex

	inoMu sync.Mutex
	// inos maps the inode number of a copied-up file in the upper
	// directory to the number it had below, which it keeps while mounted.
	inos map[uint64]uint64

	tmpSeq atomic.Uint64

	// gen counts changes to the upper directory's names; what a node
	// caches about its directory holds only for the generation it saw.
	gen atomic.Uint64
}

// changed ends the validity of every node's cached listing.
func (u *union) changed() { u.gen.Add(1) }

// upperInoBit marks inode numbers taken from the upper directory, so they
// never collide with the small numbers of a Lower.
const upperInoBit = 1 << 63

func newUnion(lower Lower, upper, work string, readOnly bool) (*union, error) {
	u := &union{lower: lower, upper: upper, work: work, readOnly: readOnly, inos: map[uint64]uint64{}}
	u.gen.Store(1)
	for _, d := range []string{upper, work} {
		if st, err := os.Stat(d); err != nil {
			return nil, fmt.Errorf("fuse: %w", err)
		} else if !st.IsDir() {
			return nil, fmt.Errorf("fuse: %s is not a directory", d)
		}
	}
	root, ok := lower.Lookup("/")
	if !ok {
		return nil, fmt.Errorf("fuse: lower layers have no root directory")
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(upper, &st); err != nil {
		return nil, fmt.Errorf("fuse: upper %s: %w", upper, err)
	}
	u.inos[st.Ino] = root.Ino
	return u, nil
}

// ino returns the inode number the merged view shows for upper inode st.
func (u *union) ino(upperIno uint64) uint64 {
	u.inoMu.Lock()
	defer u.inoMu.Unlock()
	if i, ok := u.inos[upperIno]; ok {
		return i
	}
	return upperIno | upperInoBit
}

// keepIno makes the upper inode upperIno show as ino.
func (u *union) keepIno(upperIno, ino uint64) {
	if ino == upperIno|upperInoBit {
		return
	}
	u.inoMu.Lock()
	u.inos[upperIno] = ino
	u.inoMu.Unlock()
}

// forgetIno drops the mapping of an upper inode that is being removed for
// good, so that a new file reusing its number gets a number of its own.
func (u *union) forgetIno(up string) {
	var st syscall.Stat_t
	if syscall.Lstat(up, &st) != nil || (st.Mode&syscall.S_IFMT != syscall.S_IFDIR && st.Nlink > 1) {
		return
	}
	u.inoMu.Lock()
	delete(u.inos, st.Ino)
	u.inoMu.Unlock()
}

// tmpName returns a fresh path in the work directory.
func (u *union) tmpName() string {
	return filepath.Join(u.work, "#fuse"+strconv.FormatUint(u.tmpSeq.Add(1), 10))
}

// attrFromStat fills out from an upper file's stat.
func (u *union) attrFromStat(st *syscall.Stat_t, out *fuse.Attr) {
	out.FromStat(st)
	out.Ino = u.ino(st.Ino)
}

// attrFromEntry fills out from a lower entry.
func attrFromEntry(e *Entry, out *fuse.Attr) {
	*out = fuse.Attr{
		Ino: e.Ino, Size: uint64(e.Size), Blocks: (uint64(e.Size) + 511) / 512,
		Mode: e.Mode, Nlink: e.Nlink, Rdev: uint32(e.Rdev), Blksize: 4096,
		Owner: fuse.Owner{Uid: e.UID, Gid: e.GID},
	}
	sec, nsec := uint64(e.Mtime/1e9), uint32(e.Mtime%1e9)
	out.Atime, out.Atimensec = sec, nsec
	out.Mtime, out.Mtimensec = sec, nsec
	out.Ctime, out.Ctimensec = sec, nsec
	if e.Mode&syscall.S_IFMT == syscall.S_IFLNK {
		out.Size = uint64(len(e.Target))
	}
}
