package fstest

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/acetate/acetate/internal/testtree"
	"golang.org/x/sys/unix"
)

// Fixture fills dir with the template tree the cases work on:
// testtree.Crafted (every file type, modes, owners, xattrs, hardlinks,
// sparse and large files, odd names) plus a directory of ManyEntries files
// (/many/fNNNN), a nested tree (/tree/x, /tree/sub/deep/file),
// /etc/passwd and /etc/shadow of mode 0000. It needs root.
func Fixture(t testing.TB, dir string) {
	t.Helper()
	testtree.Crafted(t, dir)
	files := map[string]string{
		"tree/x":             "x\n",
		"tree/sub/deep/file": "deep\n",
		"tree/sub/y":         "y\n",
		"etc/passwd":         "root:x:0:0:root:/root:/bin/sh\n",
		"etc/shadow":         "root:*:19000:0:99999:7:::\n",
	}
	for i := range ManyEntries {
		files[fmt.Sprintf("many/f%04d", i)] = fmt.Sprint(i)
	}
	ts := unix.NsecToTimespec(1_600_000_000_123_456_789)
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Mode 0000, as Fedora and RHEL ship /etc/shadow: root alone reads it.
	if err := os.Chmod(filepath.Join(dir, "etc/shadow"), 0); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"tree/sub/deep", "tree/sub", "tree", "many", "etc", "."} {
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(dir, name), []unix.Timespec{ts, ts}, 0); err != nil {
			t.Fatal(err)
		}
	}
}

// ManyEntries is the number of files in the fixture's /many.
const ManyEntries = 1200
