// Package treecmp compares two directory trees entry by entry: type, mode,
// owner, nanosecond mtime, xattrs, content, symlink target, device numbers,
// and hardlink grouping. Tests use it to compare a mount or an export
// against a reference tree.
package treecmp

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/acetate/acetate/layers"
	"golang.org/x/sys/unix"
)

// Options relax a comparison.
type Options struct {
	// IgnoreDirMtime skips directory mtimes (a mount's root, say).
	IgnoreDirMtime bool
	// RecentMtime, when not zero, takes two mtimes at or after it (ns since
	// the epoch) as equal: both were set by the test itself, at different
	// moments on each side.
	RecentMtime int64
	// IgnoreXattrPrefixes skips xattrs whose names start with any prefix
	// (for example "trusted.overlay.").
	IgnoreXattrPrefixes []string
	// Skip lists paths (relative, "/"-rooted like "/dev") not compared,
	// with everything below them.
	Skip []string
}

// Compare returns nil when the trees at a and b are the same, or an error
// listing up to 20 differences.
func Compare(a, b string, o Options) error {
	ta, err := Read(a, o)
	if err != nil {
		return err
	}
	tb, err := Read(b, o)
	if err != nil {
		return err
	}
	var diffs []string
	for p, ea := range ta.Entries {
		eb, ok := tb.Entries[p]
		if !ok {
			diffs = append(diffs, fmt.Sprintf("%s: only in %s", p, a))
			continue
		}
		if d := ea.diff(eb, o); d != "" {
			diffs = append(diffs, p+": "+d)
		}
	}
	for p := range tb.Entries {
		if _, ok := ta.Entries[p]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: only in %s", p, b))
		}
	}
	diffs = append(diffs, compareLinks(ta, tb)...)
	diffs = append(diffs, compareLinks(tb, ta)...)
	if len(diffs) == 0 {
		return nil
	}
	slices.Sort(diffs)
	n := len(diffs)
	if n > 20 {
		diffs = append(diffs[:20], "...")
	}
	return fmt.Errorf("%d differences between %s and %s:\n%s", n, a, b, strings.Join(diffs, "\n"))
}

// Tree is a read tree, by path.
type Tree struct {
	Entries map[string]*Entry
	// Links groups paths by inode, for hardlink comparison.
	Links map[[2]uint64][]string
}

// Entry is what is compared for one path.
type Entry struct {
	Mode     uint32 // type and permission bits
	UID, GID uint32
	Mtime    int64
	Size     int64
	Rdev     uint64
	Target   string
	Xattrs   []layers.Xattr
	Content  []byte // for regular files
	Blocks   int64
	ino      [2]uint64
}

// Read reads the tree at root.
func Read(root string, o Options) (*Tree, error) {
	t := &Tree{Entries: map[string]*Entry{}, Links: map[[2]uint64][]string{}}
	err := filepath.Walk(root, func(path string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel := "/" + strings.TrimPrefix(strings.TrimPrefix(path, root), "/")
		for _, s := range o.Skip {
			if layers.IsUnder(rel, s) {
				if rel == s {
					return filepath.SkipDir
				}
				return nil
			}
		}
		e, err := readEntry(path, o)
		if err != nil {
			return err
		}
		t.Entries[rel] = e
		if e.Mode&unix.S_IFMT == unix.S_IFREG {
			t.Links[e.ino] = append(t.Links[e.ino], rel)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read tree %s: %w", root, err)
	}
	return t, nil
}

func readEntry(path string, o Options) (*Entry, error) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return nil, err
	}
	e := &Entry{Mode: st.Mode, UID: st.Uid, GID: st.Gid, Mtime: st.Mtim.Nano(), Rdev: st.Rdev,
		Blocks: st.Blocks, ino: [2]uint64{st.Dev, st.Ino}}
	xs, err := layers.ReadXattrs(path)
	if err != nil {
		return nil, err
	}
	for _, x := range xs {
		if !hasAnyPrefix(x.Name, o.IgnoreXattrPrefixes) {
			e.Xattrs = append(e.Xattrs, x)
		}
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFLNK:
		e.Target, err = os.Readlink(path)
	case unix.S_IFREG:
		e.Size = st.Size
		e.Content, err = readFile(path)
	case unix.S_IFDIR:
		if o.IgnoreDirMtime {
			e.Mtime = 0
		}
	}
	return e, err
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func (a *Entry) diff(b *Entry, o Options) string {
	var d []string
	if a.Mode != b.Mode {
		d = append(d, fmt.Sprintf("mode %o != %o", a.Mode, b.Mode))
	}
	if a.UID != b.UID || a.GID != b.GID {
		d = append(d, fmt.Sprintf("owner %d:%d != %d:%d", a.UID, a.GID, b.UID, b.GID))
	}
	if a.Mtime != b.Mtime && !o.bothRecent(a.Mtime, b.Mtime) {
		d = append(d, fmt.Sprintf("mtime %d != %d", a.Mtime, b.Mtime))
	}
	if a.Rdev != b.Rdev && a.Mode&unix.S_IFMT != unix.S_IFDIR && a.Mode&unix.S_IFMT != unix.S_IFREG {
		d = append(d, fmt.Sprintf("rdev %d != %d", a.Rdev, b.Rdev))
	}
	if a.Target != b.Target {
		d = append(d, fmt.Sprintf("symlink %q != %q", a.Target, b.Target))
	}
	if !bytes.Equal(a.Content, b.Content) || a.Size != b.Size {
		d = append(d, fmt.Sprintf("content differs (%d vs %d bytes)", a.Size, b.Size))
	}
	if xa, xb := fmtXattrs(a.Xattrs), fmtXattrs(b.Xattrs); xa != xb {
		d = append(d, fmt.Sprintf("xattrs %s != %s", xa, xb))
	}
	return strings.Join(d, "; ")
}

func (o Options) bothRecent(a, b int64) bool {
	return o.RecentMtime != 0 && a >= o.RecentMtime && b >= o.RecentMtime
}

func fmtXattrs(xs []layers.Xattr) string {
	var parts []string
	for _, x := range xs {
		parts = append(parts, fmt.Sprintf("%s=%q", x.Name, x.Value))
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// compareLinks checks that paths hardlinked together in a are hardlinked
// together in b.
func compareLinks(a, b *Tree) []string {
	var diffs []string
	for _, group := range a.Links {
		if len(group) < 2 {
			continue
		}
		slices.Sort(group)
		first, ok := b.Entries[group[0]]
		if !ok {
			continue
		}
		for _, p := range group[1:] {
			if e, ok := b.Entries[p]; ok && e.ino != first.ino {
				diffs = append(diffs, fmt.Sprintf("%s: hardlinked to %s in one tree only", p, group[0]))
			}
		}
	}
	return diffs
}
