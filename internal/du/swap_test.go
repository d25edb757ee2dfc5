package du

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/acetate/acetate/internal/testtree"
)

// TestSwappedDirNotFollowed is the attack: a container exchanges a
// directory of its upper directory with a symbolic link to a host
// directory (renameat2 RENAME_EXCHANGE in a loop) while the tree is
// measured. No measure may count the host's file; a walk by path, run
// alongside as the reference, must count it at least once.
func TestSwappedDirNotFollowed(t *testing.T) {
	base := t.TempDir()
	tree, host := filepath.Join(base, "tree"), filepath.Join(base, "host")
	const hostSize = 1<<20 + 7
	for _, d := range []string{filepath.Join(tree, "d"), host} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(host, "big"), make([]byte, hostSize), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(host, filepath.Join(tree, "l")); err != nil {
		t.Fatal(err)
	}
	stop := testtree.Swap([2]string{filepath.Join(tree, "d"), filepath.Join(tree, "l")})
	fooled := 0
	for range 2000 {
		if Tree(tree).Apparent >= hostSize {
			t.Fatal("counted the host's file")
		}
		if byPath(tree) >= hostSize {
			fooled++
		}
	}
	stop()
	if fooled == 0 {
		t.Fatal("the walk by path was never fooled: the swap did not run")
	}
}

// byPath sums the regular files' sizes as Tree did, by path.
func byPath(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if fi, ierr := d.Info(); err == nil && ierr == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	return n
}
