package diskimage_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/acetate/acetate/fs/diskimage"
	"github.com/acetate/acetate/internal/testtree"
	"golang.org/x/sys/unix"
)

// setup skips without what images need, and returns an image path and a
// mount point in a temporary directory; the test's cleanup unmounts.
func setup(t *testing.T) (img, dir string) {
	t.Helper()
	testtree.RequireDiskImages(t)
	tmp := t.TempDir()
	img, dir = filepath.Join(tmp, "disk.img"), filepath.Join(tmp, "disk")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if m, _ := diskimage.Mounted(dir); m {
			diskimage.Unmount(dir, true)
		}
		requireNoLoop(t, img)
	})
	return img, dir
}

// requireNoLoop fails when a loop device is still backed by img.
func requireNoLoop(t *testing.T, img string) {
	t.Helper()
	out, err := exec.Command("losetup", "-j", img).Output()
	if err == nil && strings.TrimSpace(string(out)) != "" {
		t.Errorf("loop device left behind: %s", out)
	}
}

// An image's size is its limit: df shows it, a write past it gets ENOSPC,
// Resize grows and shrinks it offline, above its use, and unmount leaves no loop device.
func TestCreateFillResize(t *testing.T) {
	img, dir := setup(t)
	const size = 32 << 20
	if err := diskimage.Create(img, diskimage.Limits{Bytes: size}); err != nil {
		t.Fatal(err)
	}
	requireNoLoop(t, img)
	if err := diskimage.Mount(img, dir); err != nil {
		t.Fatal(err)
	}
	u, err := diskimage.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := diskimage.Mount(img, t.TempDir()); err == nil || !strings.Contains(err.Error(), "attached to /dev/loop") {
		t.Errorf("second mount of a mounted image: %v", err)
	}
	if u.Bytes < size || u.Bytes > size+size/16 {
		t.Errorf("size %d, want about %d", u.Bytes, size)
	}
	n, err := testtree.Fill(filepath.Join(dir, "big"))
	if !errors.Is(err, unix.ENOSPC) {
		t.Fatalf("fill: %v, want ENOSPC", err)
	}
	if n < size*9/10 || n > size {
		t.Errorf("wrote %d bytes before ENOSPC, want about %d", n, size)
	}
	if err := diskimage.Unmount(dir, false); err != nil {
		t.Fatal(err)
	}
	if m, _ := diskimage.Mounted(dir); m {
		t.Error("still mounted")
	}
	requireNoLoop(t, img)
	if err := diskimage.Resize(img, size/2); err == nil {
		t.Error("shrink below use succeeded")
	}
	if err := diskimage.Resize(img, 2*size); err != nil {
		t.Fatal(err)
	}
	if err := diskimage.Mount(img, dir); err != nil {
		t.Fatal(err)
	}
	if u, _ = diskimage.Stat(dir); u.Bytes < 2*size || u.Bytes > 2*size+size/16 {
		t.Errorf("size after grow %d, want %d", u.Bytes, 2*size)
	}
	if err := os.WriteFile(filepath.Join(dir, "more"), make([]byte, size/2), 0o644); err != nil {
		t.Errorf("write after grow: %v", err)
	}
	if err := os.Remove(filepath.Join(dir, "big")); err != nil {
		t.Fatal(err)
	}
	if err := diskimage.Unmount(dir, false); err != nil {
		t.Fatal(err)
	}
	if err := diskimage.Resize(img, size); err != nil {
		t.Fatalf("shrink above use: %v", err)
	}
	if err := diskimage.Mount(img, dir); err != nil {
		t.Fatal(err)
	}
	if u, _ = diskimage.Stat(dir); u.Bytes < size || u.Bytes > size+size/16 {
		t.Errorf("size after shrink %d, want %d", u.Bytes, size)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "more")); err != nil || len(b) != size/2 {
		t.Errorf("file after shrink: %d bytes, %v", len(b), err)
	}
}

// The inode limit holds: creating files stops with ENOSPC near it.
func TestInodes(t *testing.T) {
	img, dir := setup(t)
	if err := diskimage.Create(img, diskimage.Limits{Bytes: 16 << 20, Inodes: 200}); err != nil {
		t.Fatal(err)
	}
	if err := diskimage.Mount(img, dir); err != nil {
		t.Fatal(err)
	}
	defer diskimage.Unmount(dir, false)
	var n int
	for ; n < 10000; n++ {
		f, err := os.Create(filepath.Join(dir, "f"+string(rune('a'+n%26))+strings.Repeat("x", n/26)))
		if err != nil {
			if !errors.Is(err, unix.ENOSPC) {
				t.Fatalf("create: %v, want ENOSPC", err)
			}
			break
		}
		f.Close()
	}
	if n < 200 || n > 200+64 {
		t.Errorf("made %d files before ENOSPC, want 200 to 264", n)
	}
}

// Bad sizes are refused and leave nothing.
func TestCreateRefusesTiny(t *testing.T) {
	img, _ := setup(t)
	if err := diskimage.Create(img, diskimage.Limits{Bytes: 1 << 20}); err == nil {
		t.Fatal("1 MiB image made")
	}
	if _, err := os.Stat(img); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("image left: %v", err)
	}
}
