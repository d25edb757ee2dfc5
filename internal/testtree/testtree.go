// Package testtree builds trees for tests: a crafted tree with every kind of
// entry and metadata a template must keep, access to a real Debian
// rootfs made by debootstrap, and network namespaces of the tests' own.
package testtree

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// RequireRoot skips the test when not running as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (mknod, chown, trusted xattrs, mounts)")
	}
}

// DebianRootfs returns a Debian minbase rootfs (debootstrap), from
// $ACETATE_TEST_ROOTFS or /var/cache/acetate-test/rootfs, or skips the test
// when there is none. Tests must not modify it.
func DebianRootfs(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("ACETATE_TEST_ROOTFS")
	if dir == "" {
		dir = "/var/cache/acetate-test/rootfs"
	}
	if _, err := os.Stat(filepath.Join(dir, "usr/bin/dpkg")); err != nil {
		if _, lerr := exec.LookPath("debootstrap"); lerr != nil {
			t.Skip("no Debian rootfs and debootstrap is not installed")
		}
		t.Skipf("no Debian rootfs at %s: run `debootstrap --variant=minbase bookworm %s` (as .ci/run does)", dir, dir)
	}
	return dir
}

// capNetRaw is a security.capability value (VFS_CAP_REVISION_2, effective)
// granting CAP_NET_RAW, as setcap cap_net_raw+ep writes it.
var capNetRaw = []byte{1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}

// Crafted fills dir with a tree holding every case a template must keep:
// content, all file types, setuid/setgid/sticky modes, owners, nanosecond
// times, xattrs (user, trusted, security.capability), symlinks, hardlinks,
// device nodes, fifos, sparse files, empty directories and names made of
// arbitrary bytes. It needs root.
func Crafted(t testing.TB, dir string) {
	t.Helper()
	RequireRoot(t)
	b := &builder{t: t, root: dir}
	b.dir("/", 0o755, 0, 0)
	b.dir("/bin", 0o755, 0, 0)
	b.file("/bin/tool", 0o4755, 0, 0, []byte("#!/bin/sh\necho tool\n"))
	b.file("/bin/ping", 0o755, 0, 0, []byte("ping binary"))
	b.xattr("/bin/ping", "security.capability", capNetRaw)
	b.file("/bin/sg", 0o2755, 0, 50, []byte("setgid"))
	b.dir("/tmp", 0o1777, 0, 0)
	b.dir("/home", 0o755, 0, 0)
	b.dir("/home/user", 0o700, 1000, 1000)
	b.file("/home/user/notes", 0o640, 1000, 1000, []byte("notes of user\n"))
	b.xattr("/home/user/notes", "user.comment", []byte("hello"))
	b.xattr("/home/user/notes", "trusted.acetate-test", []byte{0, 1, 2, 255})
	b.file("/home/user/same-content", 0o600, 1000, 1000, []byte("notes of user\n"))
	b.file("/empty-file", 0o644, 0, 0, nil)
	b.dir("/empty-dir", 0o750, 7, 8)
	b.symlink("/bin/sh", "tool")
	b.symlink("/abs-link", "/etc/passwd")
	b.symlink("/dangling", "no/such/target")
	b.dir("/links", 0o755, 0, 0)
	b.file("/links/a", 0o644, 3, 4, []byte("hardlinked content"))
	b.hardlink("/links/a", "/links/b")
	b.hardlink("/links/a", "/bin/c-link")
	b.dir("/dev", 0o755, 0, 0)
	b.node("/dev/null", unix.S_IFCHR|0o666, 1, 3)
	b.node("/dev/sda", unix.S_IFBLK|0o660, 8, 0)
	b.node("/dev/fifo", unix.S_IFIFO|0o600, 0, 0)
	b.sparse("/sparse", 8<<20)
	b.file("/big", 0o644, 0, 0, bigContent(6<<20))
	b.dir("/names", 0o755, 0, 0)
	for _, name := range []string{"\xff\xfe binary", "new\nline", "tab\there", "ünïcødé", " leading space", "-dash", "a:b;c|d*e?f"} {
		b.file("/names/"+name, 0o644, 0, 0, []byte(name))
	}
	b.finish()
}

func bigContent(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*7 + i/4096)
	}
	return p
}

type builder struct {
	t     testing.TB
	root  string
	times []string // paths whose mtime is set at the end, deepest last
}

func (b *builder) path(p string) string { return filepath.Join(b.root, p) }

func (b *builder) check(err error) {
	b.t.Helper()
	if err != nil {
		b.t.Fatal(err)
	}
}

func (b *builder) dir(p string, mode os.FileMode, uid, gid int) {
	b.check(os.MkdirAll(b.path(p), 0o755))
	b.meta(p, mode, uid, gid)
}

func (b *builder) file(p string, mode os.FileMode, uid, gid int, content []byte) {
	b.check(os.WriteFile(b.path(p), content, 0o600))
	b.meta(p, mode, uid, gid)
}

func (b *builder) meta(p string, mode os.FileMode, uid, gid int) {
	b.check(os.Lchown(b.path(p), uid, gid))
	b.check(unix.Chmod(b.path(p), uint32(mode)))
	b.times = append(b.times, p)
}

func (b *builder) xattr(p, name string, value []byte) {
	b.check(unix.Lsetxattr(b.path(p), name, value, 0))
}

func (b *builder) symlink(p, target string) {
	b.check(os.Symlink(target, b.path(p)))
	b.check(os.Lchown(b.path(p), 0, 0))
	b.times = append(b.times, p)
}

func (b *builder) hardlink(existing, p string) {
	b.check(os.Link(b.path(existing), b.path(p)))
}

func (b *builder) node(p string, mode uint32, major, minor uint32) {
	b.check(unix.Mknod(b.path(p), mode, int(unix.Mkdev(major, minor))))
	b.times = append(b.times, p)
}

// sparse makes a file of size bytes with data only in a few places.
func (b *builder) sparse(p string, size int64) {
	f, err := os.Create(b.path(p))
	b.check(err)
	defer f.Close()
	b.check(f.Truncate(size))
	for _, off := range []int64{0, 3 << 20, size - 10} {
		_, err := f.WriteAt([]byte("data here!"), off)
		b.check(err)
	}
	b.times = append(b.times, p)
}

// finish sets distinct nanosecond mtimes, children before their parents.
func (b *builder) finish() {
	base := time.Date(2024, 2, 29, 12, 34, 56, 0, time.UTC).UnixNano()
	for i := len(b.times) - 1; i >= 0; i-- {
		ts := unix.NsecToTimespec(base + int64(i)*1_000_000_007 + 123)
		b.check(unix.UtimesNanoAt(unix.AT_FDCWD, b.path(b.times[i]), []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW))
	}
}

// DebPackage returns the path of a downloaded .deb of package name, from
// $ACETATE_TEST_DEBS or /var/cache/acetate-test/debs, fetching it there with
// `apt-get download` if needed; it skips the test when that fails.
func DebPackage(t testing.TB, name string) string {
	t.Helper()
	dir := os.Getenv("ACETATE_TEST_DEBS")
	if dir == "" {
		dir = "/var/cache/acetate-test/debs"
	}
	if m, _ := filepath.Glob(filepath.Join(dir, name+"_*.deb")); len(m) > 0 {
		return m[0]
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Skipf("no .deb of %s: %v", name, err)
	}
	cmd := exec.Command("apt-get", "download", name)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("no .deb of %s and `apt-get download %s` failed: %v\n%s", name, name, err, out)
	}
	m, _ := filepath.Glob(filepath.Join(dir, name+"_*.deb"))
	if len(m) == 0 {
		t.Skipf("apt-get download %s left no .deb in %s", name, dir)
	}
	return m[0]
}

// CopyTree copies src to a new directory dst with cp -a (all metadata).
func CopyTree(t testing.TB, src, dst string) {
	t.Helper()
	if out, err := exec.Command("cp", "-a", "--", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp -a %s %s: %v\n%s", src, dst, err, out)
	}
}
