package du

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
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
	if File(filepath.Join(dir, "sub", "sparse")) != 0 {
		t.Error("a hole-only file should take no blocks")
	}
}
