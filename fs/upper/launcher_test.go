package upper_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acetate/acetate/fs/upper"
	"github.com/acetate/acetate/internal/testtree"
	"github.com/acetate/acetate/layers"
	"golang.org/x/sys/unix"
)

// The empty mount points the launcher makes in a root that lacks them are
// not changes; a mount point the container changed, or a name of its own
// in the root, is (and the root's mtime then shows too).
func TestLauncherDirs(t *testing.T) {
	testtree.RequireRoot(t)
	then := time.Unix(1e9, 0)
	tmpl := []layers.Entry{{Path: "/", Type: layers.TypeDir, Mode: 0o755, Mtime: then.UnixNano()}, dir("/etc")}
	for _, c := range []struct {
		name   string
		change func(u string) error
		want   string
	}{
		{"untouched", func(string) error { return nil }, ""},
		{"file in /proc", func(u string) error { return os.WriteFile(filepath.Join(u, "proc/f"), nil, 0o644) },
			"C / A /proc A /proc/f"},
		{"chmod /sys", func(u string) error { return os.Chmod(filepath.Join(u, "sys"), 0o700) }, "C / A /sys"},
		{"xattr on /dev", func(u string) error { return unix.Lsetxattr(filepath.Join(u, "dev"), "user.x", []byte("1"), 0) },
			"C / A /dev"},
		{"own name in the root", func(u string) error { return os.Mkdir(filepath.Join(u, "srv"), 0o755) }, "C / A /srv"},
	} {
		t.Run(c.name, func(t *testing.T) {
			u := filepath.Join(t.TempDir(), "upper")
			for _, d := range append([]string{""}, upper.LauncherDirs...) {
				if err := os.Mkdir(filepath.Join(u, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.change(u); err != nil {
				t.Fatal(err)
			}
			// A copied-up directory: no new name in the root.
			etc := filepath.Join(u, "etc")
			if err := os.Mkdir(etc, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(etc, time.Unix(0, 0), time.Unix(0, 0)); err != nil {
				t.Fatal(err)
			}
			if got := changes(t, u, tmpl); got != c.want {
				t.Errorf("changes: %q, want %q", got, c.want)
			}
		})
	}
}

// changes lists the changes of upper directory u over base as "K /path ...".
func changes(t *testing.T, u string, base []layers.Entry) string {
	t.Helper()
	ch, err := upper.Changes(u, base)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range ch {
		out = append(out, string(c.Kind)+" "+c.Path)
	}
	return strings.Join(out, " ")
}

// The mount points the launcher made for volumes (marked with
// MountPointXattr, the parent's mtime kept) are not changes, nested ones
// and a file made for a file's bind neither; one the container wrote into, or chmod'ed, is, without the
// mark; and a directory the container made is a change even with every
// other property of one the launcher made (it cannot set the mark).
func TestMountPoints(t *testing.T) {
	testtree.RequireRoot(t)
	then := time.Unix(1e9, 0)
	tmpl := []layers.Entry{{Path: "/", Type: layers.TypeDir, Mode: 0o755, Mtime: then.UnixNano()},
		{Path: "/mnt", Type: layers.TypeDir, Mode: 0o755, Mtime: then.UnixNano()}}
	for _, c := range []struct {
		name   string
		change func(u string) error
		want   string
	}{
		{"untouched", func(string) error { return nil }, ""},
		{"file in one", func(u string) error { return os.WriteFile(filepath.Join(u, "mnt/a/b/f"), nil, 0o644) },
			"A /mnt/a A /mnt/a/b A /mnt/a/b/f"},
		{"chmod", func(u string) error { return os.Chmod(filepath.Join(u, "data"), 0o700) }, "A /data"},
		{"unmarked", func(u string) error { return unix.Lremovexattr(filepath.Join(u, "data"), upper.MountPointXattr) },
			"A /data"},
	} {
		t.Run(c.name, func(t *testing.T) {
			u := filepath.Join(t.TempDir(), "upper")
			for _, d := range []string{"", "mnt", "data", "mnt/a", "mnt/a/b", "mnt/a/conf"} {
				var err error
				if d == "mnt/a/conf" { // a file's bind
					err = os.WriteFile(filepath.Join(u, d), nil, 0o644)
				} else {
					err = os.Mkdir(filepath.Join(u, d), 0o755)
				}
				if err != nil {
					t.Fatal(err)
				}
				if d != "" && d != "mnt" {
					if err := unix.Lsetxattr(filepath.Join(u, d), upper.MountPointXattr, []byte("y"), 0); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := c.change(u); err != nil {
				t.Fatal(err)
			}
			for _, d := range []string{"", "mnt"} {
				if err := os.Chtimes(filepath.Join(u, d), then, then); err != nil {
					t.Fatal(err)
				}
			}
			if got := changes(t, u, tmpl); got != c.want {
				t.Errorf("changes: %q, want %q", got, c.want)
			}
			m, err := upper.Read(u, tmpl)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range m.Entries {
				for _, x := range e.Xattrs {
					if x.Name == upper.MountPointXattr {
						t.Errorf("%s keeps the mark", e.Path)
					}
				}
			}
		})
	}
}
