package fuse

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/acetate/acetate/internal/beneath"

	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// union is the state one mount shares between its nodes.
//
// The upper and work directories are held as descriptors, and every path
// in them is resolved from those with package beneath: no symbolic link
// is followed and nothing outside them is reached, whatever the container
// renames or swaps in between two requests (a server working on absolute
// paths opened host files as root for a container that raced it).
type union struct {
	lower Lower
	// root is the mount's root node.
	root *node
	// upperFd and workFd are O_PATH descriptors of the upper directory and
	// of the work directory, on the same filesystem, which holds files
	// being made before they are renamed into place.
	upperFd, workFd int
	readOnly        bool
	// passthrough is set when the kernel offers FUSE passthrough.
	passthrough atomic.Bool

	// mu serializes every change to the upper directory.
	mu sync.Mutex

	inoMu sync.Mutex
	// inos maps the inode number of a copied-up file in the upper
	// directory to the number it had below, which it keeps while mounted.
	inos map[uint64]uint64
	// gens holds the generation of inode numbers whose kernel inode was
	// replaced (see node.rebind); absent means 0.
	gens map[uint64]uint64

	tmpSeq atomic.Uint64

	// gen counts changes to the upper directory's names; what a node
	// caches about its directory holds only for the generation it saw.
	gen atomic.Uint64

	// lookups counts the lookups the kernel sent (a LOOKUP, or an entry of
	// a READDIRPLUS), each of which may make a node (see quietWatch).
	lookups atomic.Uint64

	// server is the mount's FUSE server, once it has started.
	server atomic.Pointer[fuse.Server]

	// tree guards the rest: the nodes the kernel knows, by node id (ids;
	// none below freeFrom is free), regular files with several links by
	// inode number (hard), and the open files by handle (handles, with
	// freeFhs); see tree.go and handles.go.
	tree     sync.Mutex
	ids      []*node
	freeFrom uint64
	hard     map[uint64]*node
	handles  []*file
	freeFhs  []uint64
}

// changed ends the validity of every node's cached listing.
func (u *union) changed() { u.gen.Add(1) }

// upperInoBit marks inode numbers taken from the upper directory, so they
// never collide with the small numbers of a Lower.
const upperInoBit = 1 << 63

func newUnion(lower Lower, upper, work string, readOnly bool) (*union, error) {
	u := &union{lower: lower, readOnly: readOnly, inos: map[uint64]uint64{}, gens: map[uint64]uint64{}}
	u.gen.Store(1)
	var err error
	if u.upperFd, err = openDir(upper); err != nil {
		return nil, err
	}
	if u.workFd, err = openDir(work); err != nil {
		unix.Close(u.upperFd)
		return nil, err
	}
	root, ok := lower.Lookup("/")
	if !ok {
		u.close()
		return nil, fmt.Errorf("fuse: lower layers have no root directory")
	}
	var st unix.Stat_t
	if err := unix.Fstat(u.upperFd, &st); err != nil {
		u.close()
		return nil, fmt.Errorf("fuse: upper %s: %w", upper, err)
	}
	u.inos[st.Ino] = root.Ino
	u.root = &node{u: u, lower: "/"}
	u.initTree(u.root, root.Ino)
	return u, nil
}

// openDir opens directory d, which the caller names (it is not the
// container's), as an O_PATH descriptor.
func openDir(d string) (int, error) {
	fd, err := unix.Open(d, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("fuse: %s: %w", d, err)
	}
	return fd, nil
}

// close releases the union's descriptors once its mount is gone.
func (u *union) close() {
	unix.Close(u.upperFd)
	unix.Close(u.workFd)
}

// at resolves rel, a path of the merged view ("" for the root), in the
// upper directory; the caller closes it.
func (u *union) at(rel string) (beneath.At, error) { return beneath.Resolve(u.upperFd, rel) }

// xattrIno keeps, on an upper file made by a copy-up, the inode number the
// merged view shows for it (8 bytes, little-endian), so that the file keeps
// its number across remounts.
const xattrIno = xattrPrefix + "acetate.ino"

// ino returns the inode number the merged view shows for the upper file
// a, whose own inode number is upperIno.
func (u *union) ino(a beneath.At, upperIno uint64) uint64 {
	u.inoMu.Lock()
	i, ok := u.inos[upperIno]
	u.inoMu.Unlock()
	if ok {
		return i
	}
	i = upperIno | upperInoBit
	if v, ok := a.Xattr(xattrIno); ok && len(v) == 8 {
		i = binary.LittleEndian.Uint64([]byte(v))
	}
	u.inoMu.Lock()
	u.inos[upperIno] = i
	u.inoMu.Unlock()
	return i
}

// newIno returns the inode number the merged view shows for an upper file
// just made, whose own inode number is upperIno: a new file's own number,
// or for a new name of a file the view knows (a hardlink), its number.
func (u *union) newIno(upperIno uint64) uint64 {
	u.inoMu.Lock()
	defer u.inoMu.Unlock()
	i, ok := u.inos[upperIno]
	if !ok {
		i = upperIno | upperInoBit
		u.inos[upperIno] = i
	}
	return i
}

// keepIno makes the upper file a, inode upperIno, show as ino, now and
// after a remount.
func (u *union) keepIno(a beneath.At, upperIno, ino uint64) error {
	if ino == upperIno|upperInoBit {
		return nil
	}
	u.inoMu.Lock()
	u.inos[upperIno] = ino
	u.inoMu.Unlock()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], ino)
	if err := a.Setxattr(xattrIno, b[:], 0); err != nil {
		return fmt.Errorf("keep inode number: %w", err)
	}
	return nil
}

// forgetIno drops the mapping of an upper inode that is being removed for
// good, so that a new file reusing its number gets a number of its own.
func (u *union) forgetIno(a beneath.At) {
	var st unix.Stat_t
	if a.Lstat(&st) != nil || (st.Mode&unix.S_IFMT != unix.S_IFDIR && st.Nlink > 1) {
		return
	}
	u.inoMu.Lock()
	delete(u.inos, st.Ino)
	u.inoMu.Unlock()
}

// tmpAt returns a fresh name in the work directory.
func (u *union) tmpAt() beneath.At {
	return beneath.At{Dir: u.workFd, Name: "#fuse" + strconv.FormatUint(u.tmpSeq.Add(1), 10)}
}

// attrFromStat fills out from the stat of the upper file a.
func (u *union) attrFromStat(a beneath.At, st *unix.Stat_t, out *fuse.Attr) {
	fromStat(st, out)
	out.Ino = u.ino(a, st.Ino)
}

// fromStat fills out from st: fuse.Attr.FromStat takes the syscall
// package's Stat_t, which is the same structure as x/sys/unix's.
func fromStat(st *unix.Stat_t, out *fuse.Attr) {
	out.FromStat((*syscall.Stat_t)(unsafe.Pointer(st)))
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

// notifyAttr has the kernel fetch n's attributes again.
func (u *union) notifyAttr(n *node) {
	u.tree.Lock()
	id := n.nodeID
	u.tree.Unlock()
	if s := u.server.Load(); s != nil && id != 0 {
		s.InodeNotify(id, -1, 0)
	}
}
