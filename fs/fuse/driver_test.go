package fuse_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/acetate/acetate/fs"
	"github.com/acetate/acetate/fs/fstest"
	"github.com/acetate/acetate/fs/fuse"
	"github.com/acetate/acetate/internal/testtree"
	"github.com/acetate/acetate/internal/treecmp"
	"github.com/acetate/acetate/layers/layerstest"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// publish stores the tree at dir as a one-layer stack in a new store and
// returns a Spec over it with fresh upper, work and target directories.
func publish(t testing.TB, dir string) fs.Spec {
	t.Helper()
	tmp := t.TempDir()
	store, d := layerstest.StoreOf(t, filepath.Join(tmp, "store"), dir)
	s := fs.Spec{Store: store, Layers: []digest.Digest{d}}
	s.Upper, s.Work, s.Target = filepath.Join(tmp, "upper"), filepath.Join(tmp, "work"), filepath.Join(tmp, "mnt")
	for _, p := range []string{s.Upper, s.Work, s.Target} {
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The upper root carries the template root's metadata, as a new
	// container's does.
	copyRootMeta(t, dir, s.Upper)
	return s
}

// mount mounts s with the fuse driver and unmounts it at the end of t.
func mount(t testing.TB, s fs.Spec) {
	t.Helper()
	d := &fuse.Driver{}
	if err := d.Mount(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Unmount(s.Target); err != nil {
			t.Errorf("unmount: %v", err)
			unix.Unmount(s.Target, unix.MNT_DETACH)
		}
	})
}

// The Debian rootfs served from the store is the same tree as the
// extracted directory, metadata, content and hardlinks included.
func TestDebianRootfsSameTree(t *testing.T) {
	testtree.RequireRoot(t)
	rootfs := testtree.DebianRootfs(t)
	s := publish(t, rootfs)
	mount(t, s)
	if err := treecmp.Compare(rootfs, s.Target, treecmp.Options{IgnoreDirMtime: false}); err != nil {
		t.Fatal(err)
	}
}

// A server killed with SIGKILL leaves a mount answering ENOTCONN; Unmount
// cleans it, and a new Mount over a stale target works.
func TestStaleMountRecovery(t *testing.T) {
	testtree.RequireRoot(t)
	fixture := filepath.Join(t.TempDir(), "fixture")
	fstest.Fixture(t, fixture)
	s := publish(t, fixture)
	d := &fuse.Driver{}
	for _, recover := range []string{"unmount", "mount"} {
		t.Run(recover, func(t *testing.T) {
			if err := d.Mount(context.Background(), s); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { unix.Unmount(s.Target, unix.MNT_DETACH) })
			killServers(t)
			var sfs unix.Statfs_t
			if err := unix.Statfs(s.Target, &sfs); !errors.Is(err, unix.ENOTCONN) {
				t.Fatalf("statfs of a mount whose server is dead: %v, want ENOTCONN", err)
			}
			if recover == "mount" {
				if err := d.Mount(context.Background(), s); err != nil {
					t.Fatal(err)
				}
				if b, err := os.ReadFile(filepath.Join(s.Target, "etc/passwd")); err != nil || !strings.HasPrefix(string(b), "root:") {
					t.Fatalf("remounted: %q, %v", b, err)
				}
			}
			if err := d.Unmount(s.Target); err != nil {
				t.Fatal(err)
			}
			if err := unix.Statfs(s.Target, &sfs); err != nil || sfs.Type == unix.FUSE_SUPER_MAGIC {
				t.Fatalf("target after unmount: %v, type %x", err, sfs.Type)
			}
			if err := d.Unmount(s.Target); err == nil {
				t.Fatal("unmount of a target that is not mounted succeeded")
			}
		})
	}
}

// killServers kills the fuse servers this test process started with
// SIGKILL and waits for them to go.
func killServers(t *testing.T) {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(fields) < 2 || fields[0] == "Z" || fields[1] != strconv.Itoa(os.Getpid()) {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill %d: %v", pid, err)
		}
		var ws syscall.WaitStatus
		syscall.Wait4(pid, &ws, 0, nil)
		return
	}
	t.Fatalf("no server process found under pid %d", os.Getpid())
}

// copyRootMeta gives directory dst the mode, owner and mtime of src.
func copyRootMeta(t testing.TB, src, dst string) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(src, &st); err != nil {
		t.Fatal(err)
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	for _, err := range []error{
		os.Chown(dst, int(st.Uid), int(st.Gid)),
		unix.Chmod(dst, st.Mode&07777),
		unix.UtimesNanoAt(unix.AT_FDCWD, dst, ts, 0),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// The fuse mounts of a store share one server process, which outlives
// nothing but its mounts: killed with SIGKILL, every mount answers
// ENOTCONN and Mount brings each back (with its upper's content) through
// a new server; after the last unmount no server is left.
func TestOneServerPerStore(t *testing.T) {
	testtree.RequireRoot(t)
	fixture := filepath.Join(t.TempDir(), "fixture")
	fstest.Fixture(t, fixture)
	first := publish(t, fixture)
	specs := []fs.Spec{first}
	for i := 1; i < 3; i++ {
		s := first
		dir := t.TempDir()
		s.Upper, s.Work, s.Target = filepath.Join(dir, "upper"), filepath.Join(dir, "work"), filepath.Join(dir, "mnt")
		for _, p := range []string{s.Upper, s.Work, s.Target} {
			if err := os.Mkdir(p, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		copyRootMeta(t, fixture, s.Upper)
		specs = append(specs, s)
	}
	root := first.Store.Root()
	d := &fuse.Driver{}
	mountAll := func() int {
		t.Helper()
		pid := 0
		for i, s := range specs {
			if err := d.Mount(context.Background(), s); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { unix.Unmount(s.Target, unix.MNT_DETACH) })
			p, err := fuse.ServerPid(root)
			if err != nil {
				t.Fatal(err)
			}
			if pid != 0 && p != pid {
				t.Fatalf("mount %d served by pid %d, the others by %d", i, p, pid)
			}
			pid = p
		}
		return pid
	}
	pid := mountAll()
	for i, s := range specs {
		if err := os.WriteFile(filepath.Join(s.Target, "mine"), []byte(strconv.Itoa(i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	killServers(t)
	for i, s := range specs {
		var sfs unix.Statfs_t
		if err := unix.Statfs(s.Target, &sfs); !errors.Is(err, unix.ENOTCONN) {
			t.Fatalf("mount %d after its server was killed: %v, want ENOTCONN", i, err)
		}
	}
	if again := mountAll(); again == pid {
		t.Fatalf("remounted by the killed server %d", pid)
	}
	for i, s := range specs {
		if b, err := os.ReadFile(filepath.Join(s.Target, "mine")); err != nil || string(b) != strconv.Itoa(i) {
			t.Errorf("mount %d after the remount: %q, %v", i, b, err)
		}
		if err := d.Unmount(s.Target); err != nil {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := fuse.ServerPid(root); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the server still answers 5 s after the last unmount")
		}
	}
}
