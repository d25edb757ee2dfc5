package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// built is the acetate-fuse binary the tests build once, for the programs
// that run it by name (mount.fuse3, podman).
var built struct {
	once sync.Once
	dir  string
	err  error
	out  []byte
}

// binaryDir builds acetate-fuse into a directory of its own, once per
// run, and returns the directory.
func binaryDir(t testing.TB) string {
	t.Helper()
	built.once.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "acetate-fuse-bin"); built.err != nil {
			return
		}
		os.Chmod(built.dir, 0o755)
		cmd := exec.Command("go", "build", "-o", filepath.Join(built.dir, "acetate-fuse"), ".")
		built.out, built.err = cmd.CombinedOutput()
	})
	if built.err != nil {
		t.Fatalf("go build: %v: %s", built.err, built.out)
	}
	return built.dir
}

// TestMountHelper mounts with mount(8), which finds acetate-fuse through
// mount.fuse3: the binary this test builds on the PATH, and the installed
// /usr/local/bin/acetate-fuse (.ci/setup) with no PATH at all.
func TestMountHelper(t *testing.T) {
	requireFuse(t)
	if _, err := exec.LookPath("mount.fuse3"); err != nil {
		t.Skipf("no mount.fuse3 (Debian package fuse3): %v", err)
	}
	t.Run("built", func(t *testing.T) {
		checkMountHelper(t, append(os.Environ(), "PATH="+binaryDir(t)+":/usr/sbin:/usr/bin:/sbin:/bin"))
	})
	t.Run("installed", func(t *testing.T) {
		if _, err := os.Stat("/usr/local/bin/acetate-fuse"); err != nil {
			t.Skipf("acetate-fuse is not installed (.ci/setup installs it): %v", err)
		}
		checkMountHelper(t, []string{})
	})
}

// checkMountHelper runs mount -t fuse.acetate-fuse in environment env and
// checks the mount.
func checkMountHelper(t *testing.T, env []string) {
	s := newStack(t, 2)
	write(t, s.lower[0], map[string]string{"top": "t"})
	write(t, s.lower[1], map[string]string{"top": "hidden", "bottom": "b"})
	mnt := mountPoint(t)
	cmd := exec.Command("/usr/bin/mount", "-t", "fuse.acetate-fuse", "-o", s.options()+",nosuid,nodev", "acetate", mnt)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mount -t fuse.acetate-fuse: %v: %s", err, out)
	}
	t.Cleanup(func() { unmount(t, mnt) })
	for name, want := range map[string]string{"top": "t", "bottom": "b"} {
		if b, err := os.ReadFile(filepath.Join(mnt, name)); err != nil || string(b) != want {
			t.Errorf("%s: %q, %v", name, b, err)
		}
	}
	mounts, err := os.ReadFile("/proc/self/mounts")
	if err != nil || !strings.Contains(string(mounts), " "+mnt+" fuse.") {
		t.Errorf("%s is not a FUSE mount in /proc/self/mounts (%v)", mnt, err)
	}
}
