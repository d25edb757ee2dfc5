package container

import (
	"fmt"

	"github.com/acetate/acetate/internal/du"
	"golang.org/x/sys/unix"
)

// xattrDiff, on the container's directory, keeps the disk its differences
// used when it was last mounted or unmounted, "INO BYTES", so that listing
// a thousand containers walks no upper directory. INO is the inode number
// of the upper directory it was measured in: a restore or reset swaps in a
// new upper directory, and the figure then no longer holds. An xattr, not
// a file: a file would add a block to every container.
const xattrDiff = "user.acetate.diff"

// DiffBytes returns the disk used by container name's differences (its
// upper directory). With measure, or when no figure is kept, it walks the
// upper directory now; otherwise it returns the figure kept when the
// container was last mounted or unmounted, which a running container's
// writes since have not changed. exact reports a figure measured now.
func (m *Manager) DiffBytes(name string, measure bool) (bytes int64, exact bool) {
	upper := m.UpperDir(name)
	var st unix.Stat_t
	if unix.Lstat(upper, &st) != nil {
		return imageUse(m.path(name)), false
	}
	if !measure {
		var ino uint64
		if v, err := getxattr(m.path(name), xattrDiff); err == nil {
			if n, _ := fmt.Sscan(v, &ino, &bytes); n == 2 && ino == st.Ino {
				return bytes, false
			}
		}
	}
	return du.Tree(upper).Disk, true
}

// keepDiffUsage keeps what the upper directory of container name uses, at
// rest: before its union is mounted (measured only when no figure is kept)
// and, with measure, once it is unmounted. Failing (a filesystem without
// user xattrs), listings measure it.
func (m *Manager) keepDiffUsage(name string, measure bool) {
	bytes, exact := m.DiffBytes(name, measure)
	var st unix.Stat_t
	if !exact || unix.Lstat(m.UpperDir(name), &st) != nil {
		return
	}
	setxattr(m.path(name), xattrDiff, fmt.Sprintf("%d %d", st.Ino, bytes))
}
