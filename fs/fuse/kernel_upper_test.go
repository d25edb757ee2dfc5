package fuse_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	acetatefs "github.com/acetate/acetate/fs"
	"github.com/acetate/acetate/fs/fstest"
	"github.com/acetate/acetate/internal/testtree"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// An upper directory written by kernel overlayfs with metacopy=on and
// redirect_dir=on, where a chmod leaves a metacopy file and a directory
// rename a redirect, reads the same under the fuse driver; writing the
// metacopy file completes its copy-up. A metacopy file redirected to an
// object, as the overlay driver's layers make them, reads the object.
func TestReadsKernelOverlayUpper(t *testing.T) {
	testtree.RequireRoot(t)
	fixture := filepath.Join(t.TempDir(), "fixture")
	fstest.Fixture(t, fixture)
	s := publish(t, fixture)

	kmnt := t.TempDir()
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s,metacopy=on,redirect_dir=on,index=off", fixture, s.Upper, s.Work)
	if err := unix.Mount("overlay", kmnt, "overlay", 0, opts); err != nil {
		t.Skipf("kernel overlayfs: %v", err)
	}
	must(t, os.Chmod(filepath.Join(kmnt, "big"), 0o600))
	must(t, os.Rename(filepath.Join(kmnt, "tree"), filepath.Join(kmnt, "moved")))
	must(t, unix.Unmount(kmnt, 0))
	if !hasXattr(filepath.Join(s.Upper, "big"), "trusted.overlay.metacopy") {
		t.Fatal("kernel overlayfs made no metacopy file on chmod; the test would prove nothing")
	}
	if !hasXattr(filepath.Join(s.Upper, "moved"), "trusted.overlay.redirect") {
		t.Fatal("kernel overlayfs made no redirect on a directory rename")
	}

	// A metacopy file whose data is an object of the store.
	obj := s.Store.ObjectFile(digestOf(t, s, "/bin/ping"))
	rel, _ := filepath.Rel(s.Store.ObjectsDir(), obj)
	meta := filepath.Join(s.Upper, "bin-ping-meta")
	must(t, os.WriteFile(meta, nil, 0o755))
	must(t, os.Truncate(meta, int64(len("ping binary"))))
	must(t, unix.Lsetxattr(meta, "trusted.overlay.metacopy", nil, 0))
	must(t, unix.Lsetxattr(meta, "trusted.overlay.redirect", []byte("/"+rel), 0))

	mount(t, s)
	big, err := os.ReadFile(filepath.Join(s.Target, "big"))
	must(t, err)
	want, err := os.ReadFile(filepath.Join(fixture, "big"))
	must(t, err)
	if !bytes.Equal(big, want) {
		t.Fatal("metacopy file reads other data than its lower file")
	}
	if fi, err := os.Stat(filepath.Join(s.Target, "big")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("metacopy file: %v, mode %v", err, fi.Mode())
	}
	if b, err := os.ReadFile(filepath.Join(s.Target, "moved/sub/deep/file")); err != nil || string(b) != "deep\n" {
		t.Fatalf("redirected directory: %q, %v", b, err)
	}
	if _, err := os.Lstat(filepath.Join(s.Target, "tree")); !os.IsNotExist(err) {
		t.Fatalf("renamed-away directory still shows: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(s.Target, "bin-ping-meta")); err != nil || string(b) != "ping binary" {
		t.Fatalf("metacopy file redirected to an object: %q, %v", b, err)
	}

	f, err := os.OpenFile(filepath.Join(s.Target, "big"), os.O_WRONLY|os.O_APPEND, 0)
	must(t, err)
	_, err = f.Write([]byte("!"))
	must(t, err)
	must(t, f.Close())
	if hasXattr(filepath.Join(s.Upper, "big"), "trusted.overlay.metacopy") {
		t.Fatal("written metacopy file is still a metacopy")
	}
	big, err = os.ReadFile(filepath.Join(s.Target, "big"))
	must(t, err)
	if !bytes.Equal(big, append(want, '!')) {
		t.Fatal("completed copy-up lost data")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func hasXattr(p, name string) bool {
	_, err := unix.Lgetxattr(p, name, nil)
	return err == nil
}

// digestOf returns the object digest of path p in the spec's one layer.
func digestOf(t *testing.T, s acetatefs.Spec, p string) digest.Digest {
	t.Helper()
	m, err := s.Store.ReadLayer(s.Layers[0])
	must(t, err)
	for _, e := range m.Entries {
		if e.Path == p {
			return e.Digest
		}
	}
	t.Fatalf("%s not in the layer", p)
	return ""
}
