package layers

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/acetate/acetate/internal/beneath"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// EntryBeneath describes the entry a, named rel in a tree, as EntryAt does
// for a path, and returns the stat it was made from. It reads a tree that
// somebody else changes while it is read (a container's upper directory)
// through its parent's descriptor only: whatever is swapped in at the name,
// no symbolic link is followed, so no host file is described.
func EntryBeneath(a beneath.At, rel string) (Entry, unix.Stat_t, error) {
	var st unix.Stat_t
	if err := a.Lstat(&st); err != nil {
		return Entry{}, st, err
	}
	e := Entry{Path: rel, Mode: st.Mode & 0o7777, UID: st.Uid, GID: st.Gid, Mtime: st.Mtim.Sec*1e9 + st.Mtim.Nsec}
	var err error
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		e.Type = TypeDir
	case unix.S_IFREG:
		e.Type, e.Size = TypeReg, st.Size
	case unix.S_IFLNK:
		e.Type = TypeSymlink
		e.Target, err = a.Readlink()
	case unix.S_IFCHR:
		e.Type, e.Major, e.Minor = TypeChar, unix.Major(st.Rdev), unix.Minor(st.Rdev)
	case unix.S_IFBLK:
		e.Type, e.Major, e.Minor = TypeBlock, unix.Major(st.Rdev), unix.Minor(st.Rdev)
	case unix.S_IFIFO:
		e.Type = TypeFifo
	case unix.S_IFSOCK:
		e.Type = TypeSocket
	default:
		err = fmt.Errorf("unsupported file type %#o", st.Mode&unix.S_IFMT)
	}
	if err == nil {
		e.Xattrs, err = XattrsBeneath(a)
	}
	return e, st, err
}

// XattrsBeneath returns the extended attributes of the entry a itself,
// sorted by name.
func XattrsBeneath(a beneath.At) ([]Xattr, error) {
	names, err := a.Listxattr()
	if errors.Is(err, unix.ENOTSUP) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var xs []Xattr
	for _, name := range names {
		v, ok := a.Xattr(name)
		if ok {
			xs = append(xs, Xattr{Name: name, Value: []byte(v)})
		}
	}
	sortXattrs(xs)
	return xs, nil
}

// NewTree returns a tree of m with nothing staged yet, for a caller that
// stages the content of m's files itself with StageFile, from descriptors
// it opened where a path could be redirected.
func (s *Store) NewTree(m *Manifest) *Tree { return &Tree{Manifest: m, st: s.newStaging()} }

// StageFile stages the content of the regular file f and returns its
// digest and size. f may be an O_PATH descriptor: the file is read through
// /proc/self/fd, which names f's inode whatever has become of its name
// since f was opened, so nothing that replaces the name is read.
func (t *Tree) StageFile(f *os.File) (digest.Digest, int64, error) {
	return t.st.putFile("/proc/self/fd/" + strconv.Itoa(int(f.Fd())))
}
