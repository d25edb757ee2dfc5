package upper_test

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/acetate/acetate/fs/upper"
	"github.com/acetate/acetate/internal/testtree"
	"github.com/acetate/acetate/layers"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

func reg(p, content string, mode uint32) layers.Entry {
	return layers.Entry{Path: p, Type: layers.TypeReg, Mode: mode, Size: int64(len(content)), Digest: digest.FromString(content)}
}

func dir(p string) layers.Entry { return layers.Entry{Path: p, Type: layers.TypeDir, Mode: 0o755} }

// base is the merged template below the hand-made upper directory.
var base = []layers.Entry{
	dir("/"), dir("/a"), reg("/a/x", "x", 0o644), reg("/a/y", "y", 0o644),
	dir("/b"), reg("/b/z", "z", 0o644), reg("/c", "c", 0o644),
	dir("/d"), reg("/d/g", "g", 0o644), dir("/d/sub"), reg("/d/sub/f", "f", 0o644),
}

// makeUpper writes, by hand, an upper directory in overlayfs format with
// every kind of mark: whiteout, opaque directory, metacopy file (in place
// and renamed), renamed directory, hardlinks and an escaped xattr.
func makeUpper(t *testing.T) string {
	testtree.RequireRoot(t)
	u := filepath.Join(t.TempDir(), "upper")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	file := func(p, content string, mode os.FileMode) {
		must(os.WriteFile(filepath.Join(u, p), []byte(content), mode))
		must(os.Chmod(filepath.Join(u, p), mode))
	}
	xattr := func(p, name, value string) { must(unix.Lsetxattr(filepath.Join(u, p), name, []byte(value), 0)) }
	for _, d := range []string{"", "a", "b", "dd"} {
		must(os.Mkdir(filepath.Join(u, d), 0o755))
	}
	must(unix.Mknod(filepath.Join(u, "a/x"), unix.S_IFCHR, 0))
	xattr("b", upper.XattrOpaque, "y")
	file("b/new", "new", 0o644)
	file("c", "", 0o600)
	must(os.Truncate(filepath.Join(u, "c"), 1))
	xattr("c", upper.XattrMetacopy, "")
	file("e", "", 0o640)
	must(os.Truncate(filepath.Join(u, "e"), 1))
	xattr("e", upper.XattrMetacopy, "")
	xattr("e", upper.XattrRedirect, "/a/y")
	must(unix.Mknod(filepath.Join(u, "d"), unix.S_IFCHR, 0))
	xattr("dd", upper.XattrRedirect, "/d")
	file("dd/extra", "extra", 0o644)
	file("h1", "linked", 0o644)
	must(os.Link(filepath.Join(u, "h1"), filepath.Join(u, "h2")))
	file("x", "own xattr", 0o644)
	xattr("x", "trusted.overlay.overlay.foo", "bar")
	xattr("x", upper.XattrOrigin, "ignored")
	return u
}

func TestRead(t *testing.T) {
	u := makeUpper(t)
	m, err := upper.Read(u, base)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]layers.Entry{}
	for _, e := range m.Entries {
		got[e.Path] = e
	}
	want := map[string]func(e layers.Entry) bool{
		"/":          func(e layers.Entry) bool { return e.Type == layers.TypeDir && !e.Opaque },
		"/a":         func(e layers.Entry) bool { return e.Type == layers.TypeDir && !e.Opaque },
		"/a/x":       func(e layers.Entry) bool { return e.Type == layers.TypeWhiteout },
		"/b":         func(e layers.Entry) bool { return e.Type == layers.TypeDir && e.Opaque && len(e.Xattrs) == 0 },
		"/b/new":     func(e layers.Entry) bool { return e.Type == layers.TypeReg && e.Digest == "" && e.Size == 3 },
		"/c":         func(e layers.Entry) bool { return e.Digest == digest.FromString("c") && e.Mode == 0o600 },
		"/d":         func(e layers.Entry) bool { return e.Type == layers.TypeWhiteout },
		"/dd":        func(e layers.Entry) bool { return e.Type == layers.TypeDir && e.Opaque },
		"/dd/extra":  func(e layers.Entry) bool { return e.Type == layers.TypeReg && e.Digest == "" },
		"/dd/g":      func(e layers.Entry) bool { return e.Digest == digest.FromString("g") },
		"/dd/sub":    func(e layers.Entry) bool { return e.Type == layers.TypeDir },
		"/dd/sub/f":  func(e layers.Entry) bool { return e.Digest == digest.FromString("f") },
		"/e":         func(e layers.Entry) bool { return e.Digest == digest.FromString("y") && e.Mode == 0o640 },
		"/h1":        func(e layers.Entry) bool { return e.LinkTo == "" },
		"/h2":        func(e layers.Entry) bool { return e.LinkTo == "/h1" },
		"/x":         func(e layers.Entry) bool { return len(e.Xattrs) == 1 && e.Xattrs[0].Name == "trusted.overlay.foo" },
		"/dd/sub/f2": nil,
	}
	for p, ok := range want {
		e, present := got[p]
		switch {
		case ok == nil && present:
			t.Errorf("%s: unexpected entry %+v", p, e)
		case ok != nil && !present:
			t.Errorf("%s: missing", p)
		case ok != nil && !ok(e):
			t.Errorf("%s: wrong entry %+v", p, e)
		}
	}
	if len(m.Entries) != len(want)-1 {
		t.Errorf("%d entries, want %d: %+v", len(m.Entries), len(want)-1, m.Entries)
	}
}

func TestChanges(t *testing.T) {
	u := makeUpper(t)
	ch, err := upper.Changes(u, base)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]upper.Kind{}
	for _, c := range ch {
		got[c.Path] = c.Kind
	}
	want := map[string]upper.Kind{
		"/a/x": upper.Deleted, "/a/y": "", "/b/z": upper.Deleted, "/b/new": upper.Added,
		"/c": upper.Changed, "/d": upper.Deleted, "/d/g": "", "/dd": upper.Added, "/dd/sub/f": upper.Added,
		"/e": upper.Added, "/h1": upper.Added, "/h2": upper.Added, "/x": upper.Added,
	}
	for p, k := range want {
		if got[p] != k {
			t.Errorf("%s: %q, want %q", p, got[p], k)
		}
	}
}

// TestLayer stages the upper directory as a layer that stacks on base.
func TestLayer(t *testing.T) {
	u := makeUpper(t)
	s, err := layers.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tree, err := upper.Layer(context.Background(), s, u, base, nil)
	if err != nil {
		t.Fatal(err)
	}
	d, err := tree.Commit(tree.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.ReadLayer(d)
	if err != nil {
		t.Fatalf("the layer does not read back: %v", err)
	}
	for _, e := range m.Entries {
		if e.Type == layers.TypeReg && e.Digest == "" {
			t.Errorf("%s has no digest", e.Path)
		}
		if e.Path == "/h2" && e.Digest != digest.FromString("linked") {
			t.Errorf("hardlink /h2 has digest %s", e.Digest)
		}
	}
	if !s.HasObject(digest.FromString("extra")) || s.HasObject(digest.FromString("c")) {
		t.Errorf("staged objects: extra %v (want true), metacopy data %v (want false: it is below)",
			s.HasObject(digest.FromString("extra")), s.HasObject(digest.FromString("c")))
	}
}

// TestCopy copies an upper directory with every kind of mark: the copy
// reads as the same layer, keeps the hardlink and the holes of the
// metacopy files, and makes whiteouts again instead of opening them.
func TestCopy(t *testing.T) {
	u := makeUpper(t)
	if err := os.Truncate(filepath.Join(u, "c"), 1<<30); err != nil { // a 1 GiB hole
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "copy")
	if err := upper.Copy(u, dst); err != nil {
		t.Fatal(err)
	}
	want, err := upper.Read(u, base)
	if err != nil {
		t.Fatal(err)
	}
	got, err := upper.Read(dst, base)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(want.Entries, got.Entries) {
		t.Errorf("the copy reads as another layer:\n%+v\nwant\n%+v", got.Entries, want.Entries)
	}
	var h1, h2, c unix.Stat_t
	for p, st := range map[string]*unix.Stat_t{"h1": &h1, "h2": &h2, "c": &c} {
		if err := unix.Lstat(filepath.Join(dst, p), st); err != nil {
			t.Fatal(err)
		}
	}
	if h1.Ino != h2.Ino {
		t.Error("the hardlink became two files")
	}
	if c.Size != 1<<30 || c.Blocks != 0 {
		t.Errorf("sparse file: size %d, %d blocks, want 1 GiB in none", c.Size, c.Blocks)
	}
}
