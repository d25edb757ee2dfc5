package container_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acetate/acetate/fs/container"
	"github.com/acetate/acetate/fs/upper"
	"github.com/acetate/acetate/internal/du"
	"github.com/acetate/acetate/internal/treecmp"
	"github.com/acetate/acetate/templates"
	"golang.org/x/sys/unix"
)

// upperKinds counts what an upper directory holds of the overlayfs format:
// whiteouts, opaque and redirected directories, metacopy files, files with
// security.capability, hardlinked and sparse files.
func upperKinds(t *testing.T, dir string) map[string]int {
	t.Helper()
	n := map[string]int{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		has := func(x string) bool { _, err := unix.Lgetxattr(p, x, nil); return err == nil }
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFCHR:
			if st.Rdev == 0 {
				n["whiteout"]++
			}
		case unix.S_IFDIR:
			if has(upper.XattrOpaque) {
				n["opaque"]++
			}
			if has(upper.XattrRedirect) {
				n["redirect"]++
			}
		case unix.S_IFREG:
			if has(upper.XattrMetacopy) {
				n["metacopy"]++
			}
			if has("security.capability") {
				n["capability"]++
			}
			if st.Nlink > 1 {
				n["hardlink"]++
			}
			if st.Blocks*512 < st.Size {
				n["sparse"]++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// sameHoles fails unless every regular file of tree b takes no more disk
// than its counterpart in tree a (plus one block): holes stay holes.
func sameHoles(t *testing.T, a, b string) {
	t.Helper()
	filepath.WalkDir(a, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		var sa, sb unix.Stat_t
		if unix.Lstat(p, &sa) != nil || unix.Lstat(filepath.Join(b, p[len(a):]), &sb) != nil {
			return nil // treecmp reports missing entries
		}
		if sb.Blocks > sa.Blocks+8 {
			t.Errorf("%s: %d blocks, was %d: holes filled", p[len(a):], sb.Blocks, sa.Blocks)
		}
		return nil
	})
}

// TestSnapshotRoundTrip changes a container under each driver, snapshots
// it, changes it again (files and settings) and restores the snapshot:
// the upper directory is exactly the one snapshotted (whiteouts, opaque
// and redirected directories, metacopy files, security.capability,
// hardlinks, holes, nanosecond times), and so is the mounted tree.
func TestSnapshotRoundTrip(t *testing.T) {
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			e, src, mnt := craftedMount(t, "c", driver)
			applyOps(t, src, mnt)
			if err := os.WriteFile(filepath.Join(mnt, "capped"), []byte("x"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := unix.Setxattr(filepath.Join(mnt, "capped"), "security.capability", []byte{1, 0, 0, 2, 0, 32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 0); err != nil {
				t.Fatal(err)
			}
			holey, err := os.Create(filepath.Join(mnt, "holey"))
			if err == nil {
				_, err = holey.WriteAt([]byte("end"), 8<<20)
				holey.Close()
			}
			if err != nil {
				t.Fatal(err)
			}
			kinds := upperKinds(t, e.m.UpperDir("c"))
			t.Logf("upper dir under %s: %v", driver, kinds)
			want := []string{"whiteout", "opaque", "redirect", "hardlink", "capability", "sparse"}
			if driver == "overlay" {
				want = append(want, "metacopy")
			}
			for _, k := range want {
				if kinds[k] == 0 {
					t.Errorf("the operations left no %s in the upper dir: the test covers less than it says", k)
				}
			}
			s, err := e.m.CreateSnapshot(context.Background(), "c", "before", container.SnapshotOptions{})
			if err != nil {
				t.Fatal(err)
			}
			e.unmount("c")
			if _, err := e.m.Clone("c", "ref"); err != nil {
				t.Fatal(err)
			}
			// Change the container's files and settings after the snapshot.
			mnt = e.mountWith("c", driver)
			for _, p := range []string{"new", "etc"} {
				if err := os.RemoveAll(filepath.Join(mnt, p)); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(filepath.Join(mnt, "later"), []byte("later"), 0o644); err != nil {
				t.Fatal(err)
			}
			e.unmount("c")
			if _, err := e.m.Configure("c", func(s *container.Settings) error { s.Hostname = "changed"; return nil }); err != nil {
				t.Fatal(err)
			}
			if err := e.m.RestoreSnapshot(context.Background(), "c", "no-such", nil); !errors.Is(err, container.ErrSnapshotNotFound) {
				t.Errorf("restore of a missing snapshot: %v", err)
			}
			if err := e.m.RestoreSnapshot(context.Background(), "c", s.Name, nil); err != nil {
				t.Fatal(err)
			}
			if err := treecmp.Compare(e.m.UpperDir("ref"), e.m.UpperDir("c"), treecmp.Options{}); err != nil {
				t.Errorf("restored upper dir differs from the snapshotted one: %v", err)
			}
			sameHoles(t, e.m.UpperDir("ref"), e.m.UpperDir("c"))
			if c, _ := e.m.Get("c"); c.Settings.Hostname != "" {
				t.Errorf("settings not restored: hostname %q", c.Settings.Hostname)
			}
			if err := treecmp.Compare(e.mountWith("ref", driver), e.mountWith("c", driver), treecmp.Options{}); err != nil {
				t.Errorf("restored container's tree differs: %v", err)
			}
			// A mounted container is refused, and left as it is.
			if err := e.m.RestoreSnapshot(context.Background(), "c", s.Name, nil); !errors.Is(err, container.ErrMounted) {
				t.Errorf("restore of a mounted container: %v, want ErrMounted", err)
			}
		})
	}
}

// TestSnapshotLifecycle: ls, rm, names, GC keeping a snapshot's layers
// (also those of a template since removed), and rm of the container
// removing its snapshots.
func TestSnapshotLifecycle(t *testing.T) {
	e := withContainer(t, map[string]string{"f": "v1"})
	write := func(content string) {
		if err := os.WriteFile(filepath.Join(e.m.UpperDir("c"), "f"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	write("v2")
	if _, err := e.m.CreateSnapshot(ctx, "c", "s1", container.SnapshotOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Millisecond)
	write("v3")
	if _, err := e.m.CreateSnapshot(ctx, "c", "s2", container.SnapshotOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.CreateSnapshot(ctx, "c", "s2", container.SnapshotOptions{}); !errors.Is(err, container.ErrSnapshotExists) {
		t.Errorf("a second s2: %v, want ErrSnapshotExists", err)
	}
	if _, err := e.m.CreateSnapshot(ctx, "c", "Bad/Name", container.SnapshotOptions{}); err == nil {
		t.Error("a bad snapshot name was taken")
	}
	if _, err := e.m.CreateSnapshot(ctx, "nope", "s", container.SnapshotOptions{}); !errors.Is(err, container.ErrNotFound) {
		t.Errorf("snapshot of a missing container: %v", err)
	}
	list, err := e.m.Snapshots("c")
	if err != nil || len(list) != 2 || list[0].Name != "s1" || list[1].Name != "s2" {
		t.Fatalf("snapshots: %v, %v", list, err)
	}
	// The template goes, GC runs: the snapshots keep what they use.
	if err := e.st.Remove(templates.MustParseRef("t")); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.GC(ctx, e.m.Roots); err != nil {
		t.Fatal(err)
	}
	write("v4")
	if err := e.m.RestoreSnapshot(ctx, "c", "s1", nil); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(e.m.UpperDir("c"), "f")); got != "v2" {
		t.Errorf("after restore of s1: %q", got)
	}
	if err := e.m.RemoveSnapshot("c", "s1"); err != nil {
		t.Fatal(err)
	}
	if err := e.m.RemoveSnapshot("c", "s1"); !errors.Is(err, container.ErrSnapshotNotFound) {
		t.Errorf("second rm: %v", err)
	}
	r, err := e.st.GC(ctx, e.m.Roots)
	if err != nil {
		t.Fatal(err)
	}
	if r.Layers != 1 {
		t.Errorf("gc after rm of s1 removed %d layers, want 1 (s1's)", r.Layers)
	}
	if err := e.m.Remove("c", false); err != nil {
		t.Fatal(err)
	}
	if r, err = e.st.GC(ctx, e.m.Roots); err != nil || r.Layers != 2 {
		t.Errorf("gc after rm of the container removed %d layers (%v), want 2 (s2's and the template's)", r.Layers, err)
	}
}

// TestSnapshotsShareContent takes 100 snapshots of a container that
// changes 1 MB each time: the store grows by about 100 MB plus metadata,
// not by 100 copies of the differences.
func TestSnapshotsShareContent(t *testing.T) {
	e := withContainer(t, map[string]string{"f": "x"})
	up := e.m.UpperDir("c")
	// Unchanging differences the container keeps: 8 MB.
	if err := os.WriteFile(filepath.Join(up, "kept"), make([]byte, 8<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	before := du.Tree(e.st.Layers.Root()).Disk
	const n, change = 100, 1 << 20
	buf := make([]byte, change)
	start := time.Now()
	for i := range n {
		for j := range buf {
			buf[j] = byte(i*31 + j*7 + j/256)
		}
		if err := os.WriteFile(filepath.Join(up, "changing-"+strings.Repeat("x", i%3)), buf, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := e.m.CreateSnapshot(context.Background(), "c", fmt.Sprintf("s%03d", i), container.SnapshotOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	grown := du.Tree(e.st.Layers.Root()).Disk - before
	t.Logf("%d snapshots of 1 MB changes each (8 MB unchanged): store grew %.1f MB in %v", n, float64(grown)/(1<<20), time.Since(start).Round(time.Millisecond))
	if grown > n*change*11/10+8<<20 {
		t.Errorf("store grew by %d bytes for %d snapshots of 1 MB changes: want about %d", grown, n, n*change)
	}
}

// A container with a disk quota (its differences in a disk image) is
// snapshotted and restored like any other: the image is mounted for the
// capture and the restore, which rebuilds the upper directory inside it;
// a snapshot taken before the quota was raised restores the old quota.
func TestSnapshotWithQuota(t *testing.T) {
	e := quotaEnv(t)
	ctx := context.Background()
	mnt := e.mount("q")
	if err := os.WriteFile(filepath.Join(mnt, "kept"), []byte("before"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.unmount("q")
	if _, err := e.m.CreateSnapshot(ctx, "q", "s1", container.SnapshotOptions{}); err != nil {
		t.Fatal(err)
	}
	mnt = e.mount("q")
	if err := os.WriteFile(filepath.Join(mnt, "kept"), []byte("after"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.unmount("q")
	if _, err := e.m.Configure("q", func(s *container.Settings) error { s.Disk = 48 << 20; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := e.m.RestoreSnapshot(ctx, "q", "s1", nil); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(e.mount("q"), "kept")); got != "before" {
		t.Errorf("after restore: %q", got)
	}
	if q, err := e.m.Quota("q"); err != nil || q == nil || q.Disk != 32<<20 {
		t.Errorf("quota after restore: %+v (%v), want the snapshot's 32 MiB", q, err)
	}
}

// A restore cut short by a crash never leaves the new differences with the
// old record: after the exchange of the upper directory, the next lock of
// the container writes the snapshot's record; before it, the intent is
// dropped and the container is as it was.
func TestRestoreCutShort(t *testing.T) {
	for _, exchanged := range []bool{false, true} {
		e := withContainer(t, map[string]string{"f": "v1"})
		ctx := context.Background()
		write := func(content string) {
			if err := os.WriteFile(filepath.Join(e.m.UpperDir("c"), "f"), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		hostname := func(h string) {
			if _, err := e.m.Configure("c", func(s *container.Settings) error { s.Hostname = h; return nil }); err != nil {
				t.Fatal(err)
			}
		}
		write("snapshot")
		hostname("at-snapshot")
		if _, err := e.m.CreateSnapshot(ctx, "c", "s1", container.SnapshotOptions{}); err != nil {
			t.Fatal(err)
		}
		write("later")
		hostname("later")
		if err := e.m.RestoreCutShort(ctx, "c", "s1", exchanged); err != nil {
			t.Fatal(err)
		}
		// Taking the container's lock finishes the restore first.
		c, err := e.m.Configure("c", func(*container.Settings) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(filepath.Join(e.m.UpperDir("c"), "f"))
		want := map[bool]string{false: "later", true: "snapshot"}[exchanged]
		if string(data) != want {
			t.Errorf("exchanged %v: differences %q, want %q", exchanged, data, want)
		}
		if _, err := os.Stat(filepath.Join(e.m.UpperDir("c"), "..", "restore.json")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("exchanged %v: the restore intent is left: %v", exchanged, err)
		}
		if want := map[bool]string{false: "later", true: "at-snapshot"}[exchanged]; c.Settings.Hostname != want {
			t.Errorf("exchanged %v: record's hostname %q, want %q (the record of those differences)", exchanged, c.Settings.Hostname, want)
		}
	}
}
