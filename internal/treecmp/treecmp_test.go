package treecmp_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/acetate/acetate/internal/testtree"
	"github.com/acetate/acetate/internal/treecmp"
	"golang.org/x/sys/unix"
)

// Every kind of difference is found: the comparison the fidelity tests
// rely on cannot pass by accident.
func TestCompareFindsEachDifference(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	testtree.Crafted(t, src)
	cases := map[string]struct {
		change func(dir string) error
		want   string
	}{
		"content": {func(d string) error { return os.WriteFile(filepath.Join(d, "bin/ping"), []byte("other"), 0) }, "content"},
		"mode":    {func(d string) error { return os.Chmod(filepath.Join(d, "bin/tool"), 0o755) }, "mode"},
		"owner":   {func(d string) error { return os.Lchown(filepath.Join(d, "empty-file"), 5, 5) }, "owner"},
		"mtime ns": {func(d string) error {
			ts := []unix.Timespec{{Sec: 1, Nsec: 1}, {Sec: 1, Nsec: 1}}
			return unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(d, "empty-file"), ts, 0)
		}, "mtime"},
		"xattr": {func(d string) error { return unix.Lremovexattr(filepath.Join(d, "bin/ping"), "security.capability") }, "xattrs"},
		"symlink": {func(d string) error {
			os.Remove(filepath.Join(d, "dangling"))
			return os.Symlink("x", filepath.Join(d, "dangling"))
		}, "symlink"},
		"rdev": {func(d string) error {
			os.Remove(filepath.Join(d, "dev/sda"))
			return unix.Mknod(filepath.Join(d, "dev/sda"), unix.S_IFBLK|0o660, int(unix.Mkdev(8, 1)))
		}, "rdev"},
		"missing":  {func(d string) error { return os.Remove(filepath.Join(d, "empty-file")) }, "only in"},
		"hardlink": {func(d string) error { return breakLink(filepath.Join(d, "links/b")) }, "hardlinked"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "dst")
			if b, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
				t.Fatalf("cp -a: %v %s", err, b)
			}
			if err := treecmp.Compare(src, dst, treecmp.Options{}); err != nil {
				t.Fatalf("identical copy differs: %v", err)
			}
			if err := c.change(dst); err != nil {
				t.Fatal(err)
			}
			err := treecmp.Compare(src, dst, treecmp.Options{IgnoreDirMtime: true})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("want a %q difference, got %v", c.want, err)
			}
		})
	}
}

// breakLink replaces a hardlink with a copy with the same metadata.
func breakLink(p string) error {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	os.Remove(p)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		return err
	}
	os.Lchown(p, int(st.Uid), int(st.Gid))
	return unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{st.Mtim, st.Mtim}, 0)
}
