package container_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/acetate/acetate/fs/container"
	"github.com/acetate/acetate/fs/fuse"
	"github.com/acetate/acetate/internal/testtree"
)

// The fuse-mounted containers of a store share its one FUSE server. Killed
// with SIGKILL, it takes every mount with it: each is reported dead
// (MountAlive), and Mount brings each back with its differences through a
// new server; the store is fsck clean afterwards (newEnv's cleanup).
func TestSharedFuseServerKilled(t *testing.T) {
	testtree.RequireRoot(t)
	e := withContainer(t, map[string]string{"etc/hostname": "t\n"})
	names := []string{"c", "d", "f"}
	for _, n := range names[1:] {
		e.create(n, "t")
	}
	root := e.st.Layers.Root()
	for _, n := range names {
		mnt := e.mountWith(n, "fuse")
		if err := os.WriteFile(filepath.Join(mnt, "mine"), []byte(n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pid, err := fuse.ServerPid(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var ws syscall.WaitStatus
	syscall.Wait4(pid, &ws, 0, nil) // the server is this process's child
	for _, n := range names {
		c, err := e.m.Get(n)
		if err != nil {
			t.Fatal(err)
		}
		if alive, err := container.MountAlive(c); err != nil || alive {
			t.Errorf("%s after its server was killed: alive %v, %v", n, alive, err)
		}
	}
	for _, n := range names {
		mnt := e.mountWith(n, "fuse")
		if b, err := os.ReadFile(filepath.Join(mnt, "mine")); err != nil || string(b) != n {
			t.Errorf("%s mounted again: %q, %v", n, b, err)
		}
	}
	if again, err := fuse.ServerPid(root); err != nil || again == pid {
		t.Errorf("served by %d (%v) after the remount, the killed server was %d", again, err, pid)
	}
}
