package container_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/acetate/acetate/fs/container"
	"github.com/acetate/acetate/fs/upper"
	"github.com/acetate/acetate/internal/testtree"
	"github.com/acetate/acetate/internal/treecmp"
	"github.com/acetate/acetate/templates"
	"golang.org/x/sys/unix"
)

// TestMetadataPerTemplate mounts two templates holding the same content
// with different modes and owners: each shows its own metadata, and the
// content is one object.
func TestMetadataPerTemplate(t *testing.T) {
	testtree.RequireRoot(t)
	e := newEnv(t)
	a := writeTree(t, map[string]string{"etc/conf": "shared content\n"})
	b := writeTree(t, map[string]string{"etc/conf": "shared content\n"})
	if err := os.Chmod(filepath.Join(b, "etc/conf"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(filepath.Join(b, "etc/conf"), 1234, 5678); err != nil {
		t.Fatal(err)
	}
	e.publish("a", a)
	e.publish("b", b)
	e.create("ca", "a")
	e.create("cb", "b")
	for name, want := range map[string][3]uint32{"ca": {0o644, 0, 0}, "cb": {0o600, 1234, 5678}} {
		var st unix.Stat_t
		p := filepath.Join(e.mount(name), "etc/conf")
		if err := unix.Stat(p, &st); err != nil {
			t.Fatal(err)
		}
		if got := [3]uint32{st.Mode & 0o7777, st.Uid, st.Gid}; got != want {
			t.Errorf("%s: mode, uid, gid = %o, want %o", name, got, want)
		}
		if got := readFile(t, p); got != "shared content\n" {
			t.Errorf("%s: content %q", name, got)
		}
	}
	u, err := e.st.DiskUsage()
	if err != nil {
		t.Fatal(err)
	}
	if u.Objects != 1 {
		t.Errorf("store holds %d objects, want the one shared content", u.Objects)
	}
}

// TestWriteCopiesUp checks that a write lands in the upper directory and
// leaves the object it was read from untouched.
func TestWriteCopiesUp(t *testing.T) {
	testtree.RequireRoot(t)
	e := withContainer(t, map[string]string{"f": "original"})
	mnt := e.mount("c")
	if err := appendTo(mnt, "f", "+changed"); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(e.m.UpperDir("c"), "f")); got != "original+changed" {
		t.Errorf("upper file holds %q", got)
	}
	e.unmount("c")
	e.create("fresh", "t")
	if got := readFile(t, filepath.Join(e.mount("fresh"), "f")); got != "original" {
		t.Errorf("another container sees %q", got)
	}
}

// TestReset drops a container's differences.
func TestReset(t *testing.T) {
	testtree.RequireRoot(t)
	e := newEnv(t)
	src := writeTree(t, map[string]string{"a": "a", "d/b": "b"})
	e.publish("t", src)
	e.create("c", "t")
	mnt := e.mount("c")
	if err := os.RemoveAll(filepath.Join(mnt, "d")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mnt, "new"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := e.m.Reset("c"); !errors.Is(err, container.ErrMounted) {
		t.Errorf("reset of a mounted container: %v, want ErrMounted", err)
	}
	e.unmount("c")
	if err := e.m.Reset("c"); err != nil {
		t.Fatal(err)
	}
	if ch, err := e.m.Diff("c"); err != nil || len(ch) != 0 {
		t.Errorf("after reset: diff %v, %v", ch, err)
	}
	if err := treecmp.Compare(src, e.mount("c"), treecmp.Options{}); err != nil {
		t.Error(err)
	}
}

// TestRebase moves a container onto a patched template: untouched files
// come from the new template, changed ones stay, conflicts are reported.
func TestRebase(t *testing.T) {
	testtree.RequireRoot(t)
	e := newEnv(t)
	v1 := writeTree(t, map[string]string{"untouched": "v1", "patched": "v1", "mine": "v1",
		"both": "v1", "chmod-patched": "v1", "chmod-same": "v1"})
	e.publish("base:1", v1)
	v2 := writeTree(t, map[string]string{"untouched": "v2", "patched": "v2", "mine": "v1",
		"both": "v2", "chmod-patched": "v2", "chmod-same": "v1", "added": "v2"})
	// Give unchanged files the same mtime as in v1 so that only content
	// differs.
	for _, p := range []string{"mine", "chmod-same"} {
		if err := copyMtime(filepath.Join(v1, p), filepath.Join(v2, p)); err != nil {
			t.Fatal(err)
		}
	}
	e.publish("base:2", v2)
	e.create("c", "base:1")
	mnt := e.mount("c")
	for _, p := range []string{"mine", "both"} {
		if err := os.WriteFile(filepath.Join(mnt, p), []byte("own"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"chmod-patched", "chmod-same"} {
		if err := os.Chmod(filepath.Join(mnt, p), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.m.Rebase("c", "base:2"); !errors.Is(err, container.ErrMounted) {
		t.Errorf("rebase of a mounted container: %v, want ErrMounted", err)
	}
	e.unmount("c")
	r, err := e.m.Rebase("c", "base:2")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/both", "/chmod-patched"}; !slices.Equal(r.Conflicts, want) {
		t.Errorf("conflicts %q, want %q", r.Conflicts, want)
	}
	mnt = e.mount("c")
	want := map[string]string{"untouched": "v2", "patched": "v2", "mine": "own", "both": "own",
		"chmod-patched": "v1", "chmod-same": "v1", "added": "v2"}
	for p, content := range want {
		if got := readFile(t, filepath.Join(mnt, p)); got != content {
			t.Errorf("%s: %q, want %q", p, got, content)
		}
	}
	for _, p := range []string{"chmod-patched", "chmod-same"} {
		if fi, err := os.Stat(filepath.Join(mnt, p)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v (%v), want 0600", p, fi.Mode(), err)
		}
	}
	c, err := e.m.Get("c")
	if err != nil || c.Template != "base:2" {
		t.Errorf("container template %q (%v), want base:2", c.Template, err)
	}
}

func copyMtime(from, to string) error {
	fi, err := os.Stat(from)
	if err != nil {
		return err
	}
	return os.Chtimes(to, fi.ModTime(), fi.ModTime())
}

// TestClone copies a container's differences with every detail.
func TestClone(t *testing.T) {
	e, _, mnt := craftedMount(t, "c", "overlay")
	for _, op := range ops {
		if err := op.do(mnt); err != nil {
			t.Fatalf("%s: %v", op.name, err)
		}
	}
	e.unmount("c")
	if _, err := e.m.Clone("c", "c2"); err != nil {
		t.Fatal(err)
	}
	if err := treecmp.Compare(e.m.UpperDir("c"), e.m.UpperDir("c2"), treecmp.Options{}); err != nil {
		t.Errorf("upper dirs differ: %v", err)
	}
	a, b := e.mount("c"), e.mount("c2")
	if err := treecmp.Compare(a, b, treecmp.Options{}); err != nil {
		t.Errorf("mounts differ: %v", err)
	}
	if _, err := e.m.Clone("c", "c2"); !errors.Is(err, container.ErrExists) {
		t.Errorf("clone onto an existing name: %v, want ErrExists", err)
	}
}

// TestRemove refuses a mounted container unless forced.
func TestRemove(t *testing.T) {
	testtree.RequireRoot(t)
	e := withContainer(t, map[string]string{"f": "x"})
	mnt := e.mount("c")
	if err := e.m.Remove("c", false); !errors.Is(err, container.ErrMounted) {
		t.Fatalf("rm of a mounted container: %v, want ErrMounted", err)
	}
	if _, err := os.Stat(filepath.Join(mnt, "f")); err != nil {
		t.Errorf("the refused rm changed the mount: %v", err)
	}
	if err := e.m.Remove("c", true); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Get("c"); !errors.Is(err, container.ErrNotFound) {
		t.Errorf("after rm: %v, want ErrNotFound", err)
	}
	if cs, _ := e.m.List(); len(cs) != 0 {
		t.Errorf("after rm, list has %d containers", len(cs))
	}
}

// TestStaleMount recovers from a mount that vanished behind acetate's back
// (as after a reboot) and refuses a second live mount.
func TestStaleMount(t *testing.T) {
	testtree.RequireRoot(t)
	e := withContainer(t, map[string]string{"f": "x"})
	mnt := e.mount("c")
	if _, err := e.m.Mount(context.Background(), "c", "overlay", ""); !errors.Is(err, container.ErrMounted) {
		t.Errorf("second mount: %v, want ErrMounted", err)
	}
	if err := unix.Unmount(mnt, 0); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(e.mount("c"), "f")); got != "x" {
		t.Errorf("remount after a stale mount shows %q", got)
	}
	if err := unix.Unmount(mnt, 0); err != nil {
		t.Fatal(err)
	}
	if err := e.m.Unmount("c"); err != nil {
		t.Errorf("unmount of a vanished mount: %v", err)
	}
	if err := e.m.Unmount("c"); !errors.Is(err, container.ErrNotMounted) {
		t.Errorf("unmount twice: %v, want ErrNotMounted", err)
	}
}

// TestCutMountState plays a power loss after a mount by an older acetate:
// the mount is gone and its state file (state.json, the mount record of
// the layout before this one), written without a sync, is empty. The
// container shows as not mounted and mounts again. (This layout's record
// is a symbolic link, made whole or not at all.)
func TestCutMountState(t *testing.T) {
	testtree.RequireRoot(t)
	e := withContainer(t, map[string]string{"f": "x"})
	mnt := e.mount("c")
	if err := unix.Unmount(mnt, 0); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(e.m.UpperDir("c"))
	if err := os.Remove(filepath.Join(dir, "mounted")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "state.json"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := e.m.Get("c")
	if err != nil {
		t.Fatal(err)
	}
	if c.Mount != nil {
		t.Errorf("a cut state file reads as mounted at %s", c.Mount.Target)
	}
	if got := readFile(t, filepath.Join(e.mount("c"), "f")); got != "x" {
		t.Errorf("mount after a cut state file shows %q", got)
	}
}

// TestBadInput checks that bad names and references are refused with the
// right error and change nothing.
func TestBadInput(t *testing.T) {
	testtree.RequireRoot(t)
	e := withContainer(t, map[string]string{"f": "x"})
	if _, err := e.m.Create("c", "t"); !errors.Is(err, container.ErrExists) {
		t.Errorf("duplicate create: %v, want ErrExists", err)
	}
	if _, err := e.m.Create("d", "nosuch"); !errors.Is(err, templates.ErrNotFound) {
		t.Errorf("create from an unknown template: %v, want templates.ErrNotFound", err)
	}
	for _, name := range []string{"", "Upper", "a/b", "a:b", "..", "-x"} {
		if _, err := e.m.Create(name, "t"); err == nil {
			t.Errorf("create %q succeeded", name)
		}
	}
	unknown := map[string]func() error{
		"mount":   func() error { _, err := e.m.Mount(context.Background(), "nosuch", "", ""); return err },
		"unmount": func() error { return e.m.Unmount("nosuch") },
		"diff":    func() error { _, err := e.m.Diff("nosuch"); return err },
		"commit": func() error {
			_, err := e.m.Commit(context.Background(), "nosuch", templates.MustParseRef("x"), nil)
			return err
		},
		"reset":  func() error { return e.m.Reset("nosuch") },
		"rebase": func() error { _, err := e.m.Rebase("nosuch", "t"); return err },
		"rm":     func() error { return e.m.Remove("nosuch", true) },
		"clone":  func() error { _, err := e.m.Clone("nosuch", "x"); return err },
	}
	for op, f := range unknown {
		if err := f(); !errors.Is(err, container.ErrNotFound) {
			t.Errorf("%s of an unknown container: %v, want ErrNotFound", op, err)
		}
	}
	if _, err := e.m.Rebase("c", "nosuch"); !errors.Is(err, templates.ErrNotFound) {
		t.Errorf("rebase onto an unknown template: %v, want templates.ErrNotFound", err)
	}
	if _, err := e.m.Mount(context.Background(), "c", "nosuch", ""); err == nil {
		t.Errorf("mount with an unknown driver succeeded")
	}
	if cs, _ := e.m.List(); len(cs) != 1 {
		t.Errorf("bad input left %d containers, want 1", len(cs))
	}
}

// TestGCKeepsContainerLayers removes the template a container came from
// and collects garbage: the container still mounts.
func TestGCKeepsContainerLayers(t *testing.T) {
	testtree.RequireRoot(t)
	e := withContainer(t, map[string]string{"f": "kept"})
	if err := e.st.Remove(templates.MustParseRef("t")); err != nil {
		t.Fatal(err)
	}
	r, err := e.st.GC(context.Background(), e.m.Roots)
	if err != nil {
		t.Fatal(err)
	}
	if r.Layers != 0 || r.Objects != 0 {
		t.Errorf("gc removed %d layers and %d objects a container uses", r.Layers, r.Objects)
	}
	if got := readFile(t, filepath.Join(e.mount("c"), "f")); got != "kept" {
		t.Errorf("after gc: %q", got)
	}
}

// TestEmptyTopLayer creates a container from an application template whose
// layer changes nothing (no root entry): the root keeps the base's
// metadata.
func TestEmptyTopLayer(t *testing.T) {
	testtree.RequireRoot(t)
	e := newEnv(t)
	src := writeTree(t, map[string]string{"f": "x"})
	if err := os.Chmod(src, 0o750); err != nil {
		t.Fatal(err)
	}
	e.publish("base", src)
	base := templates.MustParseRef("base")
	app, err := e.st.Publish(context.Background(), templates.MustParseRef("app"), src, templates.PublishOptions{Base: &base})
	if err != nil {
		t.Fatal(err)
	}
	if len(app.Layers) != 2 {
		t.Fatalf("app has %d layers, want 2", len(app.Layers))
	}
	if top, err := e.st.Layers.ReadLayer(app.Layers[1]); err != nil || len(top.Entries) != 0 {
		t.Fatalf("app's layer has entries %v (%v), want none", top, err)
	}
	e.create("c", "app")
	if err := treecmp.Compare(src, e.mount("c"), treecmp.Options{}); err != nil {
		t.Error(err)
	}
}

// TestCommitDedup commits a container whose new files repeat template
// content and whose chmod'ed file is a metacopy: only new content becomes
// new objects.
func TestCommitDedup(t *testing.T) {
	testtree.RequireRoot(t)
	e := withContainer(t, map[string]string{"f": "same content", "big": string(make([]byte, 1<<20))})
	mnt := e.mount("c")
	if err := os.WriteFile(filepath.Join(mnt, "copy"), []byte("same content"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(mnt, "big"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mnt, "new"), []byte("new content"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.unmount("c")
	if _, err := unix.Getxattr(filepath.Join(e.m.UpperDir("c"), "big"), upper.XattrMetacopy, nil); err != nil {
		t.Errorf("chmod did not leave a metacopy file in the upper dir: %v", err)
	}
	before, err := e.st.DiskUsage()
	if err != nil {
		t.Fatal(err)
	}
	e.commit("c", "t:2")
	after, err := e.st.DiskUsage()
	if err != nil {
		t.Fatal(err)
	}
	if added := after.Objects - before.Objects; added != 1 {
		t.Errorf("commit added %d objects, want 1 (only \"new content\")", added)
	}
	e.create("c2", "t:2")
	mnt2 := e.mount("c2")
	if fi, err := os.Stat(filepath.Join(mnt2, "big")); err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != 1<<20 {
		t.Errorf("big in the committed template: %v, %v", fi, err)
	}
	if got := readFile(t, filepath.Join(mnt2, "copy")); got != "same content" {
		t.Errorf("copy: %q", got)
	}
}
