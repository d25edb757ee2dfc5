package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acetate/acetate/internal/testtree"
	"golang.org/x/sys/unix"
)

// TestMain lets the test binary be the background server: run starts it
// again as the server, as the installed binary starts itself.
func TestMain(m *testing.M) {
	serveIfChild()
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// stack is one union's directories: lower (top first), upper and work.
type stack struct {
	lower       []string
	upper, work string
}

// newStack makes n empty lower directories and an upper and work
// directory under a fresh directory, all reachable by every user.
func newStack(t testing.TB, n int) *stack {
	t.Helper()
	dir := openTempDir(t)
	s := &stack{upper: filepath.Join(dir, "upper"), work: filepath.Join(dir, "work")}
	for i := range n {
		s.lower = append(s.lower, filepath.Join(dir, fmt.Sprintf("lower%d", i)))
	}
	for _, d := range append([]string{s.upper, s.work}, s.lower...) {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// openTempDir is a temporary directory that users other than root can
// reach (t.TempDir's are 0700).
func openTempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "acetate-fuse-test")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// options is the -o list of the stack.
func (s *stack) options() string {
	return fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", strings.Join(s.lower, ":"), s.upper, s.work)
}

// target is one union implementation the tests mount.
type target struct {
	name  string
	mount func(t testing.TB, options string) string
}

// targets are acetate-fuse and its reference, kernel overlayfs.
var targets = []target{{"kernel-overlay", mountKernel}, {"acetate-fuse", mountAcetate}}

// mountAcetate mounts acetate-fuse, the way a user runs it, with -o
// options at a new mount point that is unmounted when t ends.
func mountAcetate(t testing.TB, options string) string {
	t.Helper()
	requireFuse(t)
	mnt := mountPoint(t)
	var stderr bytes.Buffer
	if code := run([]string{"-o", options, mnt}, io.Discard, &stderr); code != 0 {
		t.Fatalf("acetate-fuse -o %s %s: exit %d: %s", options, mnt, code, stderr.String())
	}
	t.Cleanup(func() { unmount(t, mnt) })
	return mnt
}

// mountKernel mounts kernel overlayfs with options, with redirect_dir=on
// (renamed directories keep their content below, as acetate-fuse does) and
// metacopy=on (a metadata change copies up no data), or following both when
// read-only.
func mountKernel(t testing.TB, options string) string {
	t.Helper()
	testtree.RequireRoot(t)
	mnt := mountPoint(t)
	opts := options + ",redirect_dir=follow,metacopy=on"
	if strings.Contains(options, "upperdir=") {
		opts = options + ",redirect_dir=on,metacopy=on,index=off"
	}
	if err := unix.Mount("overlay", mnt, "overlay", 0, opts); err != nil {
		t.Skipf("kernel overlayfs: mount -o %s: %v", opts, err)
	}
	t.Cleanup(func() { unmount(t, mnt) })
	return mnt
}

func mountPoint(t testing.TB) string {
	mnt := filepath.Join(openTempDir(t), "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	return mnt
}

func requireFuse(t testing.TB) {
	t.Helper()
	testtree.RequireRoot(t)
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skipf("no FUSE: %v", err)
	}
}

// unmount unmounts mnt, detaching it when it stays busy, and waits until
// the server has let go.
func unmount(t testing.TB, mnt string) {
	var err error
	for range 50 {
		if err = unix.Unmount(mnt, 0); !errors.Is(err, unix.EBUSY) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Errorf("unmount %s: %v", mnt, err)
		unix.Unmount(mnt, unix.MNT_DETACH)
	}
}

// write makes the files of tree (path -> content; a path ending in "/" is
// a directory) under dir.
func write(t testing.TB, dir string, tree map[string]string) {
	t.Helper()
	for p, content := range tree {
		full := filepath.Join(dir, p)
		if strings.HasSuffix(p, "/") {
			if err := os.MkdirAll(full, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
