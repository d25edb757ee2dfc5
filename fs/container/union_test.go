package container_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/acetate/acetate/fs/upper"
	"github.com/acetate/acetate/internal/testtree"
	"github.com/acetate/acetate/internal/treecmp"
	"github.com/acetate/acetate/layers"
	"golang.org/x/sys/unix"
)

// fixedTime is the mtime an operation gives what it changes, the same on
// both sides of a comparison.
var fixedTime = time.Date(2025, 5, 6, 7, 8, 9, 123456789, time.UTC)

func touch(root string, paths ...string) error {
	for _, p := range paths {
		ts := unix.NsecToTimespec(fixedTime.UnixNano())
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(root, p), []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
	}
	return nil
}

func appendTo(root, p, s string) error {
	f, err := os.OpenFile(filepath.Join(root, p), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(s); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return touch(root, p)
}

// ops change a tree the same way whether it is a plain directory or a
// mounted container, in order: files that live in the template, in the
// upper directory, and in both; deletion and re-creation; directory
// replacement and rename; symlinks, hardlinks, devices, xattrs, sparse and
// large files. Writes through a template hardlink are left out: overlayfs
// without index=on copies up one name of a hardlink group only.
var ops = []struct {
	name string
	do   func(root string) error
}{
	{"append to a template file with xattrs", func(r string) error { return appendTo(r, "home/user/notes", "more\n") }},
	{"chmod a setuid template file", func(r string) error { return unix.Chmod(filepath.Join(r, "bin/tool"), 0o700) }},
	{"chown a setgid template file", func(r string) error { return os.Lchown(filepath.Join(r, "bin/sg"), 7, 8) }},
	{"setxattr on a template file", func(r string) error {
		return unix.Setxattr(filepath.Join(r, "empty-file"), "user.added", []byte("v"), 0)
	}},
	{"delete a large template file", func(r string) error { return os.Remove(filepath.Join(r, "big")) }},
	{"delete a template directory", func(r string) error { return os.RemoveAll(filepath.Join(r, "names")) }},
	{"re-create it with new content", func(r string) error {
		if err := os.Mkdir(filepath.Join(r, "names"), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(r, "names/fresh"), []byte("fresh"), 0o644); err != nil {
			return err
		}
		return touch(r, "names/fresh")
	}},
	{"rename a template file", func(r string) error { return os.Rename(filepath.Join(r, "bin/ping"), filepath.Join(r, "bin/ping2")) }},
	{"rename a template directory", func(r string) error { return os.Rename(filepath.Join(r, "home/user"), filepath.Join(r, "home/user2")) }},
	{"append inside the renamed directory", func(r string) error { return appendTo(r, "home/user2/same-content", "x") }},
	{"new files, symlink, fifo and hardlink", func(r string) error {
		d := filepath.Join(r, "new/deep")
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(d, "file"), []byte("new content"), 0o640); err != nil {
			return err
		}
		if err := os.Link(filepath.Join(d, "file"), filepath.Join(r, "new/link")); err != nil {
			return err
		}
		if err := os.Symlink("deep/file", filepath.Join(r, "new/sym")); err != nil {
			return err
		}
		if err := unix.Mkfifo(filepath.Join(d, "fifo"), 0o600); err != nil {
			return err
		}
		return touch(r, "new/deep/file", "new/sym", "new/deep/fifo")
	}},
	{"write to an upper file", func(r string) error { return appendTo(r, "new/deep/file", " and more") }},
	{"truncate a sparse template file", func(r string) error {
		if err := os.Truncate(filepath.Join(r, "sparse"), 1<<20); err != nil {
			return err
		}
		return touch(r, "sparse")
	}},
	{"replace a directory by a file", func(r string) error {
		if err := os.Remove(filepath.Join(r, "empty-dir")); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(r, "empty-dir"), []byte("now a file"), 0o600); err != nil {
			return err
		}
		return touch(r, "empty-dir")
	}},
	{"delete a device node", func(r string) error { return os.Remove(filepath.Join(r, "dev/sda")) }},
	{"delete and re-create a template file", func(r string) error {
		p := filepath.Join(r, "bin/c-link")
		if err := os.Remove(p); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte("replaced"), 0o755); err != nil {
			return err
		}
		return touch(r, "bin/c-link")
	}},
	{"many entries in a new directory", func(r string) error {
		d := filepath.Join(r, "many")
		if err := os.Mkdir(d, 0o755); err != nil {
			return err
		}
		for i := range 500 {
			p := filepath.Join(d, "f"+string(rune('a'+i%26))+string(rune('a'+i/26)))
			if err := os.WriteFile(p, []byte{byte(i)}, 0o644); err != nil {
				return err
			}
			if err := touch(r, p[len(r):]); err != nil {
				return err
			}
		}
		return nil
	}},
}

var dirMtimes = treecmp.Options{IgnoreDirMtime: true}

// drivers are the union drivers every container test runs on.
var drivers = []string{"overlay", "fuse"}

// TestMatchesPlainDir applies the same operations to a plain directory and
// to a mounted container of the same tree, under each driver, then
// compares them, their diff, and a container created from the committed
// result.
func TestMatchesPlainDir(t *testing.T) {
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) { testMatchesPlainDir(t, driver) })
	}
}

func testMatchesPlainDir(t *testing.T, driver string) {
	e, src, mnt := craftedMount(t, "c1", driver)
	if err := treecmp.Compare(src, mnt, treecmp.Options{}); err != nil {
		t.Fatalf("fresh mount: %v", err)
	}
	plain := applyOps(t, src, mnt)
	e.unmount("c1")

	changes, err := e.m.Diff("c1")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]upper.Kind{}
	for _, c := range changes {
		got[c.Path] = c.Kind
	}
	want := map[string]upper.Kind{
		"/home/user/notes": "", "/home/user": upper.Deleted, "/home/user2": upper.Added,
		"/home/user2/notes": upper.Added, "/bin/tool": upper.Changed, "/bin/sg": upper.Changed,
		"/big": upper.Deleted, "/names": upper.Changed, "/names/fresh": upper.Added,
		"/names/-dash": upper.Deleted, "/bin/ping": upper.Deleted, "/bin/ping2": upper.Added,
		"/new/deep/file": upper.Added, "/sparse": upper.Changed, "/empty-dir": upper.Changed,
		"/dev/sda": upper.Deleted, "/empty-file": upper.Changed, "/tmp": "",
	}
	for p, k := range want {
		if got[p] != k {
			t.Errorf("diff: %s is %q, want %q", p, got[p], k)
		}
	}
	if !slices.IsSortedFunc(changes, func(a, b upper.Change) int { return layers.ComparePaths(a.Path, b.Path) }) {
		t.Errorf("diff is not sorted")
	}

	e.commit("c1", "crafted:changed")
	e.create("c2", "crafted:changed")
	if err := treecmp.Compare(plain, e.mountWith("c2", driver), dirMtimes); err != nil {
		t.Fatalf("container from the committed template: %v", err)
	}
	if ch, err := e.m.Diff("c2"); err != nil || len(ch) != 0 {
		t.Errorf("a fresh container has differences %v (%v)", ch, err)
	}
}

// applyOps applies ops to mnt and to a plain copy of src, compares the two
// and returns the plain copy.
func applyOps(t *testing.T, src, mnt string) string {
	t.Helper()
	plain := filepath.Join(t.TempDir(), "plain")
	testtree.CopyTree(t, src, plain)
	for _, op := range ops {
		if err := op.do(plain); err != nil {
			t.Fatalf("%s on plain dir: %v", op.name, err)
		}
		if err := op.do(mnt); err != nil {
			t.Fatalf("%s on the mount: %v", op.name, err)
		}
	}
	if err := treecmp.Compare(plain, mnt, dirMtimes); err != nil {
		t.Fatalf("after operations: %v", err)
	}
	return plain
}

// TestCrossDriver changes a container under one driver and mounts it
// under the other: both show the same tree.
func TestCrossDriver(t *testing.T) {
	for _, pair := range [][2]string{{"overlay", "fuse"}, {"fuse", "overlay"}} {
		t.Run(pair[0]+"-then-"+pair[1], func(t *testing.T) {
			e, src, mnt := craftedMount(t, "c", pair[0])
			plain := applyOps(t, src, mnt)
			e.unmount("c")
			if err := treecmp.Compare(plain, e.mountWith("c", pair[1]), dirMtimes); err != nil {
				t.Fatalf("changed under %s, mounted under %s: %v", pair[0], pair[1], err)
			}
		})
	}
}
