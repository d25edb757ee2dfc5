package fuse_test

import (
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/acetate/acetate/fs/fuse"
	"github.com/acetate/acetate/internal/testtree"
	"golang.org/x/sys/unix"
)

// layerFiles fills dir with files (path -> content; "/" suffix: a
// directory; "wh": a whiteout).
func layerFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for p, content := range files {
		full := filepath.Join(dir, p)
		parent := full
		if p[len(p)-1] != '/' {
			parent = filepath.Dir(full)
		}
		if err := os.MkdirAll(parent, 0o755); err != nil {
			t.Fatal(err)
		}
		switch {
		case p[len(p)-1] == '/':
		case content == "wh":
			if err := unix.Mknod(full, unix.S_IFCHR, 0); err != nil {
				t.Fatal(err)
			}
		default:
			if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// The merge of three layers follows overlayfs: whiteouts hide, opaque
// directories (trusted. or user.overlay.opaque) hide what is below them, a
// file hides a directory below and a directory a file, and an entry shows
// the metadata of its topmost layer.
func TestDirLowerMerge(t *testing.T) {
	testtree.RequireRoot(t)
	dir := t.TempDir()
	top, mid, bottom := filepath.Join(dir, "top"), filepath.Join(dir, "mid"), filepath.Join(dir, "bottom")
	layerFiles(t, bottom, map[string]string{
		"mc": "data!", "orig/x": "b", "rel/y": "b", "gone": "b", "d/a": "b", "d/b": "b", "opq/x": "b", "uopq/x": "b", "f2d": "b", "d2f/x": "b", "same": "bottom",
	})
	layerFiles(t, mid, map[string]string{
		"mc": "\x00\x00\x00\x00\x00", "mc2": "\x00", "moved/new": "m", "orig": "wh", "sub/relmoved/n": "m", "rel": "wh", "gone": "wh", "d/b": "wh", "d/c": "m", "opq/y": "m", "uopq/y": "m", "f2d/z": "m", "d2f": "m", "same": "middle",
	})
	layerFiles(t, top, map[string]string{"d/top": "t", "new/": ""})
	for p, name := range map[string]string{"opq": "trusted.overlay.opaque", "uopq": "user.overlay.opaque"} {
		if err := unix.Lsetxattr(filepath.Join(mid, p), name, []byte("y"), 0); err != nil {
			t.Fatal(err)
		}
	}
	for p, x := range map[string][2]string{
		"same":         {"trusted.overlay.overlay.own", "v"},
		"moved":        {"trusted.overlay.redirect", "/orig"},
		"sub/relmoved": {"user.overlay.redirect", "../rel"},
		"mc":           {"trusted.overlay.metacopy", ""},
		"mc2":          {"trusted.overlay.metacopy", ""},
	} {
		if err := unix.Lsetxattr(filepath.Join(mid, p), x[0], []byte(x[1]), 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Lsetxattr(filepath.Join(mid, "mc2"), "trusted.overlay.redirect", []byte("/orig/x"), 0); err != nil {
		t.Fatal(err)
	}
	l, err := fuse.NewDirLower([]string{top, mid, bottom})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for p, want := range map[string][]string{
		"/":             {"d", "d2f", "f2d", "mc", "mc2", "moved", "new", "opq", "same", "sub", "uopq"},
		"/moved":        {"new", "x"},
		"/sub/relmoved": {"n", "y"},
		"/d":            {"a", "c", "top"},
		"/opq":          {"y"},
		"/uopq":         {"y"},
		"/f2d":          {"z"},
		"/new":          nil,
	} {
		if got := l.ReadDir(p); !slices.Equal(got, want) {
			t.Errorf("ReadDir(%s) = %q, want %q", p, got, want)
		}
	}
	for _, p := range []string{"/gone", "/d/b", "/opq/x", "/uopq/x", "/d2f/x", "/missing", "/d/a/under-a-file", "relative", ""} {
		if _, ok := l.Lookup(p); ok {
			t.Errorf("Lookup(%q) found an entry", p)
		}
	}
	e, ok := l.Lookup("/same")
	if !ok || e.Size != int64(len("middle")) || len(e.Xattrs) != 1 || e.Xattrs[0].Name != "trusted.overlay.own" {
		t.Errorf("Lookup(/same) = %+v, want the middle layer's file with its own xattr unescaped", e)
	}
	if e, ok := l.Lookup("/d2f"); !ok || e.Mode&syscall.S_IFMT != syscall.S_IFREG {
		t.Errorf("Lookup(/d2f) = %+v, want the middle layer's file", e)
	}
	if e, ok := l.Lookup("/uopq"); ok && len(e.Xattrs) != 0 {
		t.Errorf("the opaque marker shows as an xattr: %+v", e.Xattrs)
	}
	for p, want := range map[string]string{"/d/a": "b", "/moved/x": "b", "/mc": "data!", "/mc2": "b"} {
		f, err := l.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(f)
		f.Close()
		if string(b) != want {
			t.Errorf("Open(%s) reads %q, want %q", p, b, want)
		}
	}
	if e, ok := l.Lookup("/mc"); !ok || e.Size != 5 || len(e.Xattrs) != 0 {
		t.Errorf("Lookup(/mc) = %+v, want the metacopy's own metadata", e)
	}
	if _, err := l.Open("/d"); err == nil {
		t.Error("Open of a directory succeeded")
	}
}

// Inode numbers: files of different layers never share one even when
// their own numbers are equal, hardlinks in a layer share one, and a new
// DirLower over the same layers gives the same numbers.
func TestDirLowerInodes(t *testing.T) {
	testtree.RequireRoot(t)
	dir := t.TempDir()
	layers := []string{filepath.Join(dir, "top"), filepath.Join(dir, "bottom")}
	for _, d := range layers {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mount("tmpfs", d, "tmpfs", 0, "mode=0755"); err != nil {
			t.Skipf("tmpfs: %v", err)
		}
		defer unix.Unmount(d, unix.MNT_DETACH)
	}
	layerFiles(t, layers[0], map[string]string{"a": "t"})
	layerFiles(t, layers[1], map[string]string{"b": "b", "sub/c": "c"})
	if err := os.Link(filepath.Join(layers[1], "b"), filepath.Join(layers[1], "sub/link")); err != nil {
		t.Fatal(err)
	}
	inos := func() map[string]uint64 {
		l, err := fuse.NewDirLower(layers)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		out := map[string]uint64{}
		for _, p := range []string{"/", "/a", "/b", "/sub", "/sub/c", "/sub/link"} {
			e, ok := l.Lookup(p)
			if !ok {
				t.Fatalf("Lookup(%s): not found", p)
			}
			if e.Ino <= 1 || e.Ino&(1<<63) != 0 {
				t.Errorf("Lookup(%s): inode number %#x out of range", p, e.Ino)
			}
			out[p] = e.Ino
		}
		if got := l.Links("/b"); !slices.Equal(got, []string{"/b", "/sub/link"}) {
			t.Errorf("Links(/b) = %q", got)
		}
		return out
	}
	first := inos()
	if first["/a"] == first["/b"] {
		t.Errorf("/a and /b, inode %d in their layers, share %d", first["/a"], first["/b"])
	}
	if first["/b"] != first["/sub/link"] {
		t.Errorf("hardlinks /b and /sub/link: %d and %d", first["/b"], first["/sub/link"])
	}
	seen := map[uint64]string{}
	for p, ino := range first {
		if other, dup := seen[ino]; dup && p != "/sub/link" && other != "/sub/link" {
			t.Errorf("%s and %s share inode number %d", p, other, ino)
		}
		seen[ino] = p
	}
	if again := inos(); !maps.Equal(first, again) {
		t.Errorf("inode numbers %v, then %v", first, again)
	}
}
