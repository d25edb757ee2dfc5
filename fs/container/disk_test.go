package container_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/acetate/acetate/fs/container"
	"github.com/acetate/acetate/fs/diskimage"
	"github.com/acetate/acetate/internal/testtree"
	"golang.org/x/sys/unix"
)

// quotaEnv is a store with template "t" (a 12 MiB file "big" and a small
// one) and container "q" with a 32 MiB disk quota; its cleanup removes
// every container and checks that no loop device is left.
func quotaEnv(t *testing.T) *env {
	testtree.RequireDiskImages(t)
	e := newEnv(t)
	src := writeTree(t, map[string]string{"etc/hostname": "t\n", "big": strings.Repeat("b", 12<<20)})
	e.publish("t", src)
	if _, err := e.m.Create("q", "t", container.WithSettings(container.Settings{Disk: 32 << 20})); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cs, _ := e.m.List()
		for _, c := range cs {
			if err := e.m.Remove(c.Name, true); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
		if out, _ := exec.Command("losetup", "-a").Output(); strings.Contains(string(out), e.st.Layers.Root()) {
			t.Errorf("loop devices left behind:\n%s", out)
		}
	})
	return e
}

func statfs(t *testing.T, p string) (size, used int64) {
	t.Helper()
	var s unix.Statfs_t
	if err := unix.Statfs(p, &s); err != nil {
		t.Fatal(err)
	}
	return int64(s.Blocks) * s.Bsize, int64(s.Blocks-s.Bfree) * s.Bsize
}

// Under both drivers a disk quota is a full filesystem of that size: df
// shows it, dd, fallocate and the copy-up of a large template file get
// ENOSPC at it (and leave no half-copied file), a sparse file takes only
// what it writes, deleting frees at once, and another container and the
// store keep writing.
func TestQuotaFill(t *testing.T) {
	for _, driver := range container.DriverNames() {
		t.Run(driver, func(t *testing.T) {
			e := quotaEnv(t)
			e.create("free", "t")
			mnt := e.mountWith("q", driver)
			other := e.mountWith("free", driver)
			size, _ := statfs(t, mnt)
			if size < 32<<20 || size > 33<<20 {
				t.Errorf("df size %d, want 32 MiB", size)
			}
			sparse := filepath.Join(mnt, "sparse")
			if err := os.WriteFile(sparse, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(sparse, 1<<40); err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(sparse, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteAt([]byte("end"), 1<<40); err != nil {
				t.Errorf("write at the end of a 1 TiB sparse file: %v", err)
			}
			f.Close()
			n, err := testtree.Fill(filepath.Join(mnt, "dd"))
			if !errors.Is(err, unix.ENOSPC) {
				t.Fatalf("fill: %v, want ENOSPC", err)
			}
			if n < 28<<20 || n > 32<<20 {
				t.Errorf("wrote %d bytes before ENOSPC, want about 32 MiB", n)
			}
			if err := exec.Command("fallocate", "-l", "4M", filepath.Join(mnt, "falloc")).Run(); err == nil {
				t.Error("fallocate past the quota succeeded")
			}
			if _, err := os.OpenFile(filepath.Join(mnt, "big"), os.O_WRONLY|os.O_APPEND, 0); !errors.Is(err, unix.ENOSPC) {
				t.Errorf("copy-up of a 12 MiB template file on a full disk: %v, want ENOSPC", err)
			}
			if b, err := os.ReadFile(filepath.Join(mnt, "big")); err != nil || len(b) != 12<<20 {
				t.Errorf("template file after the failed copy-up: %d bytes, %v", len(b), err)
			}
			e.unmount("q") // a full container mounts again (see reserve)
			mnt = e.mountWith("q", driver)
			if err := os.WriteFile(filepath.Join(other, "more"), make([]byte, 40<<20), 0o644); err != nil {
				t.Errorf("a container without a quota cannot write: %v", err)
			}
			e.publish("t2", writeTree(t, map[string]string{"x": "new"}))
			_, before := statfs(t, mnt)
			if err := os.Remove(filepath.Join(mnt, "dd")); err != nil {
				t.Fatal(err)
			}
			if _, after := statfs(t, mnt); before-after < 20<<20 {
				t.Errorf("use went from %d to %d after removing the filler", before, after)
			}
			fh, err := os.OpenFile(filepath.Join(mnt, "big"), os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatalf("copy-up once there is room: %v", err)
			}
			fh.Close()
			e.unmount("q")
			if n, _ := e.m.DiffBytes("q", false); n < 12<<20 {
				t.Errorf("DiffBytes of the unmounted container: %d, want its image's use", n)
			}
			q, err := e.m.Quota("q")
			if err != nil || q == nil || q.Disk != 32<<20 || q.Used < 12<<20 {
				t.Errorf("Quota = %+v, %v", q, err)
			}
		})
	}
}

// Many small files: the inode limit stops them with ENOSPC, under both
// drivers.
func TestQuotaInodes(t *testing.T) {
	for _, driver := range container.DriverNames() {
		t.Run(driver, func(t *testing.T) {
			e := quotaEnv(t)
			if _, err := e.m.Configure("q", func(s *container.Settings) error { s.Inodes = 300; return nil }); err != nil {
				t.Fatal(err)
			}
			mnt := e.mountWith("q", driver)
			var n int
			for ; n < 5000; n++ {
				err := os.WriteFile(filepath.Join(mnt, "f"+strconv.Itoa(n)), []byte("x"), 0o644)
				if err != nil {
					if !errors.Is(err, unix.ENOSPC) {
						t.Fatalf("file %d: %v, want ENOSPC", n, err)
					}
					break
				}
			}
			if n < 300 || n > 400 {
				t.Errorf("made %d files, want 300 to 400", n)
			}
			e.unmount("q")
			// A resize keeps the inode limit: the image is made anew.
			if _, err := e.m.Configure("q", func(s *container.Settings) error { s.Disk = 64 << 20; return nil }); err != nil {
				t.Fatal(err)
			}
			mnt = e.mountWith("q", driver)
			var s unix.Statfs_t
			if err := unix.Statfs(mnt, &s); err != nil || s.Files < 300 || s.Files > 400 || int64(s.Blocks)*s.Bsize < 64<<20 {
				t.Errorf("after a grow: %d inodes, %d bytes, %v", s.Files, int64(s.Blocks)*s.Bsize, err)
			}
		})
	}
}

// The quota holds after a remount under the other driver, after a kill -9
// of the fuse server, and after set grows or shrinks it; a shrink below
// use and a change while mounted are refused and change nothing.
func TestQuotaHolds(t *testing.T) {
	e := quotaEnv(t)
	mnt := e.mountWith("q", "fuse")
	if err := os.WriteFile(filepath.Join(mnt, "data"), make([]byte, 16<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	killChildServer(t)
	mnt = e.mountWith("q", "overlay") // cleans up the dead fuse mount
	if b, err := os.ReadFile(filepath.Join(mnt, "data")); err != nil || len(b) != 16<<20 {
		t.Fatalf("data after kill -9 and remount: %d bytes, %v", len(b), err)
	}
	if size, used := statfs(t, mnt); size < 32<<20 || used < 16<<20 {
		t.Errorf("after kill -9 and a switch to overlay: size %d, used %d", size, used)
	}
	if n, err := testtree.Fill(filepath.Join(mnt, "dd")); !errors.Is(err, unix.ENOSPC) || n > 17<<20 {
		t.Errorf("fill after the switch: %d bytes, %v", n, err)
	}
	os.Remove(filepath.Join(mnt, "dd"))
	grow := func(s *container.Settings) error { s.Disk = 64 << 20; return nil }
	shrink := func(s *container.Settings) error { s.Disk = 24 << 20; return nil }
	if _, err := e.m.Configure("q", shrink); !errors.Is(err, container.ErrMounted) {
		t.Errorf("shrink while mounted: %v, want ErrMounted", err)
	}
	_, err := e.m.Configure("q", grow)
	switch {
	case !diskimage.CanGrowOnline() && !errors.Is(err, container.ErrMounted):
		t.Errorf("grow while mounted without CAP_SYS_RESOURCE: %v, want ErrMounted", err)
	case diskimage.CanGrowOnline() && err != nil:
		t.Errorf("online grow: %v", err)
	case diskimage.CanGrowOnline():
		if size, _ := statfs(t, mnt); size < 64<<20 {
			t.Errorf("size after an online grow: %d", size)
		}
		if _, err := e.m.Configure("q", func(s *container.Settings) error { s.Disk = 32 << 20; return nil }); err == nil {
			t.Fatal("shrink while mounted accepted")
		}
	}
	e.unmount("q")
	if _, err := e.m.Configure("q", func(s *container.Settings) error { s.Disk = 32 << 20; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Configure("q", func(s *container.Settings) error { s.Disk = 8 << 20; return nil }); err == nil {
		t.Error("shrink below use succeeded")
	}
	if c, _ := e.m.Get("q"); c.Settings.Disk != 32<<20 {
		t.Errorf("refused shrink left disk %d", c.Settings.Disk)
	}
	if _, err := e.m.Configure("q", grow); err != nil {
		t.Fatal(err)
	}
	mnt = e.mountWith("q", "fuse")
	if n, err := testtree.Fill(filepath.Join(mnt, "dd")); !errors.Is(err, unix.ENOSPC) || n < 40<<20 || n > 48<<20 {
		t.Errorf("fill after grow to 64 MiB: %d bytes, %v", n, err)
	}
	os.Remove(filepath.Join(mnt, "dd"))
	e.unmount("q")
	if _, err := e.m.Configure("q", shrink); err != nil {
		t.Fatalf("shrink above use: %v", err)
	}
	mnt = e.mountWith("q", "overlay")
	if size, _ := statfs(t, mnt); size < 24<<20 || size > 25<<20 {
		t.Errorf("size after shrink %d, want 24 MiB", size)
	}
	if n, err := testtree.Fill(filepath.Join(mnt, "dd")); !errors.Is(err, unix.ENOSPC) || n > 8<<20 {
		t.Errorf("fill after shrink: %d bytes, %v", n, err)
	}
}

// A quota added to a container with differences moves them into a disk
// image (refused when they do not fit), removing it moves them back, and
// diff, commit and clone of an unmounted container with a quota see its
// differences and leave no mount behind.
func TestQuotaMigrate(t *testing.T) {
	e := quotaEnv(t)
	e.create("p", "t")
	mnt := e.mountWith("p", "overlay")
	if err := os.WriteFile(filepath.Join(mnt, "data"), make([]byte, 10<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	e.unmount("p")
	set := func(disk int64) error {
		_, err := e.m.Configure("p", func(s *container.Settings) error { s.Disk = disk; return nil })
		return err
	}
	if err := set(8 << 20); !errors.Is(err, unix.ENOSPC) {
		t.Errorf("quota below the differences: %v, want ENOSPC", err)
	}
	if err := set(16 << 20); err != nil {
		t.Fatal(err)
	}
	ch, err := e.m.Diff("p")
	if err != nil || len(ch) != 2 || ch[1].Path != "/data" {
		t.Errorf("diff after moving into an image: %v, %v", ch, err)
	}
	if _, err := e.m.Clone("p", "p2"); err != nil {
		t.Fatal(err)
	}
	mnt = e.mountWith("p2", "fuse")
	if size, used := statfs(t, mnt); size < 16<<20 || used < 10<<20 {
		t.Errorf("clone: size %d, used %d", size, used)
	}
	e.unmount("p2")
	tpl := e.commit("p", "committed")
	if len(tpl.Layers) != 2 {
		t.Errorf("commit: %d layers", len(tpl.Layers))
	}
	if err := set(0); err != nil {
		t.Fatal(err)
	}
	mnt = e.mountWith("p", "overlay")
	if fi, err := os.Stat(filepath.Join(mnt, "data")); err != nil || fi.Size() != 10<<20 {
		t.Errorf("data after the quota is removed: %v", err)
	}
	if _, err := e.m.Configure("p", func(s *container.Settings) error { s.Inodes = 10; return nil }); err == nil {
		t.Error("inodes without a disk quota accepted")
	}
	if err := exec.Command("findmnt", "-rn", "-o", "TARGET").Run(); err == nil {
		out, _ := exec.Command("findmnt", "-rn", "-o", "TARGET").Output()
		if n := strings.Count(string(out), e.st.Layers.Root()); n != 1 {
			t.Errorf("%d mounts under the store, want the one container mount:\n%s", n, out)
		}
	}
}

// killChildServer kills with SIGKILL the fuse server this test process
// started (its child running this binary) and waits for it.
func killChildServer(t *testing.T) {
	t.Helper()
	self, _ := os.Executable()
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, "stat"))
		exe, _ := os.Readlink(filepath.Join(dir, "exe"))
		if err != nil || exe != self {
			continue
		}
		fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(fields) < 2 || fields[0] == "Z" || fields[1] != strconv.Itoa(os.Getpid()) {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(dir))
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		var ws syscall.WaitStatus
		syscall.Wait4(pid, &ws, 0, nil)
		return
	}
	t.Fatal(fmt.Errorf("no fuse server of pid %d", os.Getpid()))
}
