package layers

import (
	"os"
	"strconv"

	"github.com/acetate/acetate/internal/beneath"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// EntryBeneath describes the entry a, named rel in a tree, as EntryAt does
// for a path, and returns the stat it was made from. It reads a tree that
// somebody else changes while it is read (a container's upper directory)
// from its parent's descriptor only: whatever is swapped in at the name or
// above it, no symbolic link is followed, so no host file is described.
func EntryBeneath(a beneath.At, rel string) (Entry, unix.Stat_t, error) {
	var st unix.Stat_t
	if err := a.Lstat(&st); err != nil {
		return Entry{}, st, err
	}
	e, err := entryFromStat(procPath(a), rel, &st)
	return e, st, err
}

// XattrsBeneath returns the extended attributes of the entry a itself,
// sorted by name.
func XattrsBeneath(a beneath.At) ([]Xattr, error) { return ReadXattrs(procPath(a)) }

// procPath names the entry a through its parent's descriptor in /proc: the
// path reaches the very directory a holds, however it was moved, and the
// calls that take it (readlink, llistxattr, lgetxattr) do not follow the
// entry itself.
func procPath(a beneath.At) string { return "/proc/self/fd/" + strconv.Itoa(a.Dir) + "/" + a.Name }

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
