package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/acetate/acetate/internal/treecmp"
)

// changeTree makes, in the union at mnt, every kind of change that leaves
// overlayfs markers in the upper directory: whiteouts, an opaque
// directory, copy-ups of files and a directory, new files and symlinks, a
// redirect (a renamed lower directory), metacopy files (a chmod; a rename
// under kernel overlayfs).
func changeTree(t *testing.T, mnt string) {
	t.Helper()
	p := func(name string) string { return filepath.Join(mnt, name) }
	for _, err := range []error{
		os.Remove(p("a")),
		os.RemoveAll(p("d")),
		os.Mkdir(p("d"), 0o750),
		os.WriteFile(p("d/n"), []byte("new"), 0o600),
		os.Remove(p("e/z")),
		os.WriteFile(p("keep"), []byte("changed"), 0o644),
		os.Chmod(p("e"), 0o700),
		os.Symlink("keep", p("link")),
		os.Rename(p("f/old"), p("f/new")),
		os.MkdirAll(p("g/h"), 0o755),
		os.Rename(p("e"), p("renamed")),
		os.Chmod(p("meta"), 0o600),
		os.Rename(p("metamoved"), p("g/metamoved")),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// A tree changed under one union reads the same under both, with its
// upper directory as the upper directory and as the top lower directory.
func TestUpperReadsSameUnderBoth(t *testing.T) {
	cmp := treecmp.Options{RecentMtime: time.Now().UnixNano(), IgnoreDirMtime: true, IgnoreXattrPrefixes: []string{"trusted.overlay."}}
	for _, writer := range targets {
		t.Run("written-by-"+writer.name, func(t *testing.T) {
			s := newStack(t, 1)
			write(t, s.lower[0], map[string]string{"a": "a", "d/x": "x", "d/y": "y", "e/z": "z", "e/w": "w", "keep": "k", "f/old": "o", "meta": "m", "metamoved": "mm"})
			t.Run("change", func(t *testing.T) { changeTree(t, writer.mount(t, s.options())) })
			var views []string
			var names []string
			for _, reader := range targets {
				work := filepath.Join(openTempDir(t), "work")
				if err := os.Mkdir(work, 0o755); err != nil {
					t.Fatal(err)
				}
				views = append(views,
					reader.mount(t, fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", s.lower[0], s.upper, work)),
					reader.mount(t, fmt.Sprintf("lowerdir=%s:%s", s.upper, s.lower[0])))
				names = append(names, reader.name+" upper", reader.name+" lower")
			}
			for i := 1; i < len(views); i++ {
				if err := treecmp.Compare(views[0], views[i], cmp); err != nil {
					t.Errorf("%s reads differently than %s: %v", names[i], names[0], err)
				}
			}
		})
	}
}
