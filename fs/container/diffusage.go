package container

import (
	"encoding/json"
	"os"

	"github.com/acetate/acetate/internal/du"
	"golang.org/x/sys/unix"
)

// diffUsageFile keeps, in the container's directory, the disk its
// differences used when it was last mounted or unmounted, so that listing
// a thousand containers walks no upper directory.
const diffUsageFile = "diff.json"

// diffUsage is the content of diffUsageFile. Ino is the inode number of
// the upper directory it was measured in: a restore or reset swaps in a
// new upper directory, and the figure then no longer holds.
type diffUsage struct {
	Ino   uint64 `json:"ino"`
	Bytes int64  `json:"bytes"`
}

// DiffBytes returns the disk used by container name's differences (its
// upper directory). With measure, or when no figure is kept, it walks the
// upper directory now; otherwise it returns the figure kept when the
// container was last mounted or unmounted, which a running container's
// writes since have not changed. exact reports a figure measured now.
func (m *Manager) DiffBytes(name string, measure bool) (bytes int64, exact bool) {
	upper := m.UpperDir(name)
	var st unix.Stat_t
	if unix.Lstat(upper, &st) != nil {
		return 0, false
	}
	if !measure {
		var kept diffUsage
		if b, err := os.ReadFile(m.path(name, diffUsageFile)); err == nil && json.Unmarshal(b, &kept) == nil && kept.Ino == st.Ino {
			return kept.Bytes, false
		}
	}
	return du.Tree(upper).Disk, true
}

// keepDiffUsage keeps what the upper directory of container name uses, at
// rest: before its union is mounted (measured only when no figure is kept)
// and, with measure, once it is unmounted. Failing, listings measure it
// again.
func (m *Manager) keepDiffUsage(name string, measure bool) {
	bytes, exact := m.DiffBytes(name, measure)
	if !exact {
		return
	}
	var st unix.Stat_t
	if unix.Lstat(m.UpperDir(name), &st) != nil {
		return
	}
	writeJSON(m.path(name, diffUsageFile), diffUsage{Ino: st.Ino, Bytes: bytes}, runtimeOnly)
}
