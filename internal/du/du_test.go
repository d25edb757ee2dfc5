package du

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Tree agrees with du(1): blocks, not apparent sizes, and a hardlinked
// inode counted once; a sparse file counts its size as apparent only.
func TestTreeMatchesDu(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a"), make([]byte, 10000), 0o644)
	os.Link(filepath.Join(dir, "a"), filepath.Join(dir, "a-link"))
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	f, _ := os.Create(filepath.Join(dir, "sub", "sparse"))
	f.Truncate(64 << 20)
	f.Close()
	out, err := exec.Command("du", "-s", "-B1", dir).Output()
	if err != nil {
		t.Skipf("du: %v", err)
	}
	want, _ := strconv.ParseInt(strings.Fields(string(out))[0], 10, 64)
	u := Tree(dir)
	if u.Disk != want {
		t.Errorf("Disk = %d, du says %d", u.Disk, want)
	}
	if u.Files != 2 || u.Apparent != 10000+64<<20 {
		t.Errorf("Files %d Apparent %d: want 2 files of 10000 + 64 MiB", u.Files, u.Apparent)
	}
	if NewCounter().File(filepath.Join(dir, "sub", "sparse")) != 0 {
		t.Error("a hole-only file should take no blocks")
	}
}

// A Counter counts an inode named in two trees once, and Tree leaves out
// what is mounted below its root, as du -x does.
func TestCounterAndMounts(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(a, "f"), make([]byte, 8192), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(a, "f"), filepath.Join(b, "f")); err != nil {
		t.Fatal(err)
	}
	c := NewCounter()
	ua, ub := c.Tree(a), c.Tree(b)
	if ua.Files != 1 || ub.Files != 0 || c.File(filepath.Join(a, "f")) != 0 {
		t.Errorf("the linked file counted in a: %d, in b: %d files, then again alone", ua.Files, ub.Files)
	}
	if Tree(b).Files != 1 {
		t.Error("a fresh Tree does not count b's file")
	}

	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	mnt := filepath.Join(a, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, ""); err != nil {
		t.Skipf("tmpfs: %v", err)
	}
	defer unix.Unmount(mnt, 0)
	if err := os.WriteFile(filepath.Join(mnt, "big"), make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	if u := Tree(a); u.Files != 1 || u.Apparent != 8192 {
		t.Errorf("Tree crossed into the mount: %d files, %d bytes", u.Files, u.Apparent)
	}
}
