package beneath

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/acetate/acetate/internal/testtree"
	"golang.org/x/sys/unix"
)

// tree makes a directory "tree" (the container's) and beside it a host file
// holding "HOST" and a host directory holding that file; it returns the
// tree's descriptor and the host paths.
func tree(t *testing.T) (dirfd int, dir, hostFile, hostDir string) {
	t.Helper()
	base := t.TempDir()
	dir = filepath.Join(base, "tree")
	hostDir = filepath.Join(base, "host")
	hostFile = filepath.Join(hostDir, "secret")
	for _, d := range []string{dir, hostDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(hostFile, []byte("HOST"), 0o600); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd, dir, hostFile, hostDir
}

// hostUnchanged fails unless the host file still holds "HOST", mode 0600,
// with no xattr of the test's.
func hostUnchanged(t *testing.T, hostFile string) {
	t.Helper()
	b, err := os.ReadFile(hostFile)
	fi, serr := os.Stat(hostFile)
	if err != nil || serr != nil || string(b) != "HOST" || fi.Mode().Perm() != 0o600 {
		t.Fatalf("host file changed: %q %v %v %v", b, fi.Mode(), err, serr)
	}
	if _, err := unix.Getxattr(hostFile, "user.attack", nil); !errors.Is(err, unix.ENODATA) {
		t.Fatalf("host file got the container's xattr: %v", err)
	}
}

// TestSwappedSymlinkNeverFollowed is the attack: while one goroutine keeps
// exchanging a regular file with a symbolic link to a host file, and a
// directory with a link to a host directory, others read, write, chmod,
// truncate, set xattrs on and remove through the names. No call may reach
// the host.
func TestSwappedSymlinkNeverFollowed(t *testing.T) {
	dirfd, dir, hostFile, hostDir := tree(t)
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(dir, "f"), []byte("mine"), 0o644))
	must(os.Symlink(hostFile, filepath.Join(dir, "lnk")))
	must(os.Mkdir(filepath.Join(dir, "d"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "d", "secret"), []byte("mine"), 0o644))
	must(os.Symlink(hostDir, filepath.Join(dir, "dlnk")))

	stop := testtree.Swap([2]string{filepath.Join(dir, "f"), filepath.Join(dir, "lnk")},
		[2]string{filepath.Join(dir, "d"), filepath.Join(dir, "dlnk")})
	var hits, naiveHits atomic.Int64
	buf := make([]byte, 16)
	for i := 0; i < 20000; i++ {
		// The reference: the same read by absolute path, as the server
		// did before, must be caught by the swap, or the race never ran.
		if b, err := os.ReadFile(filepath.Join(dir, "f")); err == nil && string(b) == "HOST" {
			naiveHits.Add(1)
		}
		for _, rel := range []string{"f", "lnk", "d/secret", "dlnk/secret"} {
			if f, err := Open(dirfd, rel, unix.O_RDWR, 0); err == nil {
				n, _ := f.ReadAt(buf, 0)
				if strings.Contains(string(buf[:n]), "HOST") {
					hits.Add(1)
				}
				f.Close()
			}
			a, err := Resolve(dirfd, rel)
			if err != nil {
				continue
			}
			a.Chmod(0o777)
			a.Setxattr("user.attack", []byte("x"), 0)
			a.Utimes([]unix.Timespec{{Sec: 1}, {Sec: 1}})
			if f, err := a.Open(unix.O_RDONLY, 0); err == nil {
				n, _ := f.ReadAt(buf, 0)
				if strings.Contains(string(buf[:n]), "HOST") {
					hits.Add(1)
				}
				f.Close()
			}
			a.Close()
		}
	}
	stop()
	if naiveHits.Load() == 0 {
		t.Fatal("the swap never fooled a path-based read: the race did not run")
	}
	if hits.Load() != 0 {
		t.Fatalf("read the host file %d times", hits.Load())
	}
	hostUnchanged(t, hostFile)
}

// TestRemoveAllStaysInside: a directory holding a link to a host directory
// is removed without a host file going.
func TestRemoveAllStaysInside(t *testing.T) {
	dirfd, dir, hostFile, hostDir := tree(t)
	if err := os.MkdirAll(filepath.Join(dir, "a/b/c"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(hostDir, filepath.Join(dir, "a/b/host")); err != nil {
		t.Fatal(err)
	}
	for i := range 600 { // more than one Readdirnames batch
		if err := os.WriteFile(filepath.Join(dir, "a/b/c", strconv.Itoa(i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	a, err := Resolve(dirfd, "a")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.RemoveAll(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "a")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a still there: %v", err)
	}
	hostUnchanged(t, hostFile)
	if err := a.RemoveAll(); err != nil {
		t.Fatalf("removing a missing entry: %v", err)
	}
}

// TestLongPaths: a path of nearly PATH_MAX bytes inside works whatever the
// length of the directory's own path, and a missing one is ENOENT.
func TestLongPaths(t *testing.T) {
	dirfd, _, _, _ := tree(t)
	comp := strings.Repeat("c", 127)
	rel := ""
	for range 31 {
		rel += comp + "/"
		a, err := Resolve(dirfd, rel)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Mkdir(0o755); err != nil {
			t.Fatal(err)
		}
		a.Close()
	}
	file := rel + strings.Repeat("f", 120)
	a, err := Resolve(dirfd, file)
	if err != nil {
		t.Fatalf("resolve %d-byte path: %v", len(file), err)
	}
	f, err := a.Open(unix.O_CREAT|unix.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	a.Close()
	var st unix.Stat_t
	a, _ = Resolve(dirfd, rel+strings.Repeat("m", 100))
	defer a.Close()
	if err := a.Lstat(&st); !errors.Is(err, unix.ENOENT) {
		t.Fatalf("missing long path: %v, want ENOENT", err)
	}
}

// TestXattrsAndChmodWithoutNewSyscalls runs the /proc fallbacks of older
// kernels against the same entries: a symbolic link is never followed.
func TestXattrsAndChmodWithoutNewSyscalls(t *testing.T) {
	for _, fallback := range []bool{false, true} {
		dirfd, dir, hostFile, _ := tree(t)
		if fallback {
			old := haveXattrat
			haveXattrat = func() bool { return false }
			t.Cleanup(func() { haveXattrat = old })
		}
		os.WriteFile(filepath.Join(dir, "f"), nil, 0o644)
		os.Symlink(hostFile, filepath.Join(dir, "lnk"))
		f, lnk := At{Dir: dirfd, Name: "f"}, At{Dir: dirfd, Name: "lnk"}
		if err := f.Setxattr("user.a", []byte("1"), 0); err != nil {
			t.Fatal(err)
		}
		if v, ok := f.Xattr("user.a"); !ok || v != "1" {
			t.Fatalf("xattr = %q %v", v, ok)
		}
		if names, err := f.Listxattr(); err != nil || len(names) != 1 {
			t.Fatalf("list = %v %v", names, err)
		}
		if err := f.Removexattr("user.a"); err != nil {
			t.Fatal(err)
		}
		if err := lnk.Setxattr("user.attack", []byte("x"), 0); err == nil {
			t.Fatal("user xattr set on a symlink")
		}
		if err := lnk.Chmod(0o777); !errors.Is(err, unix.EOPNOTSUPP) {
			t.Fatalf("chmod of a symlink: %v, want EOPNOTSUPP", err)
		}
		if err := f.Chmod(0); err != nil {
			t.Fatal(err)
		}
		if fi, _ := os.Stat(filepath.Join(dir, "f")); fi.Mode().Perm() != 0 {
			t.Fatalf("mode %v, want 0", fi.Mode())
		}
		hostUnchanged(t, hostFile)
	}
}

// TestDevicesNeverOpened: a device node or FIFO under a name the host opens
// as a file is refused without being opened (a FIFO would block, a
// watchdog's node would arm the watchdog).
func TestDevicesNeverOpened(t *testing.T) {
	dirfd, dir, _, _ := tree(t)
	if err := unix.Mknod(filepath.Join(dir, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Skipf("cannot make a device node here: %v", err)
	}
	if err := unix.Mkfifo(filepath.Join(dir, "fifo"), 0o666); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"null", "fifo"} {
		for _, flags := range []int{unix.O_RDONLY, unix.O_WRONLY, unix.O_RDWR | unix.O_CREAT} {
			if f, err := Open(dirfd, name, flags, 0o644); !errors.Is(err, unix.ENXIO) {
				if f != nil {
					f.Close()
				}
				t.Fatalf("open %s flags %#x: %v, want ENXIO", name, flags, err)
			}
		}
	}
	f, err := Open(dirfd, "new", unix.O_RDWR|unix.O_CREAT, 0o600)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	f.Close()
	f, err = Open(dirfd, "new", unix.O_RDWR|unix.O_CREAT|unix.O_TRUNC, 0o600)
	if err != nil {
		t.Fatalf("open existing with O_CREAT: %v", err)
	}
	f.Close()
}
