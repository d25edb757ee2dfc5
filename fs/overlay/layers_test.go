package overlay_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/acetate/acetate/fs/overlay"
	"github.com/acetate/acetate/internal/testtree"
	"github.com/acetate/acetate/layers"
	"github.com/acetate/acetate/templates"
	"github.com/acetate/acetate/templates/storetest"
	"golang.org/x/sys/unix"
)

// TestManyLayers stacks 40 application layers, each adding a file and
// deleting the previous layer's, with store paths long enough that the
// old lowerdir= option string would not fit in a page.
func TestManyLayers(t *testing.T) {
	testtree.RequireRoot(t)
	long := filepath.Join(t.TempDir(), "a-rather-long-store-directory-name-to-make-every-layer-path-long")
	st, err := templates.Open(long)
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	var tpl *templates.Template
	var base *templates.Ref
	for i := range 40 {
		if i > 0 {
			if err := os.Remove(filepath.Join(src, fmt.Sprint("f", i-1))); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(src, fmt.Sprint("f", i)), []byte(fmt.Sprint(i)), 0o644); err != nil {
			t.Fatal(err)
		}
		tpl = publish(t, st, fmt.Sprintf("stack:%d", i), src, base)
		base = &tpl.Ref
	}
	if len(tpl.Layers) != 40 {
		t.Fatalf("%d layers, want 40", len(tpl.Layers))
	}
	mnt, _ := mountTemplate(t, st, tpl, false)
	names, err := os.ReadDir(mnt)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 1 || names[0].Name() != "f39" {
		t.Errorf("top of 40 layers shows %v, want only f39", names)
	}
	if got, _ := os.ReadFile(filepath.Join(mnt, "f39")); string(got) != "39" {
		t.Errorf("f39 holds %q", got)
	}
	storetest.FsckClean(t, st)
}

// TestConcurrentMetaBuild builds the same metadata tree from several
// goroutines at once: all succeed and agree.
func TestConcurrentMetaBuild(t *testing.T) {
	st, _, tpl := craftedTemplate(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() { _, errs[i] = overlay.BuildMeta(st.Layers, tpl.Layers) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if tmp, _ := os.ReadDir(st.Layers.TmpDir()); len(tmp) != 0 {
		t.Errorf("%d temporary directories left in tmp/", len(tmp))
	}
	mnt, _ := mountTemplate(t, st, tpl, true)
	if got, _ := os.ReadFile(filepath.Join(mnt, "home/user/notes")); string(got) != "notes of user\n" {
		t.Errorf("notes: %q", got)
	}
}

// TestMetaFilesFitInInodes checks that every metadata file of the crafted
// template keeps its xattrs in its inode (no block of its own), redirects
// through the layer's data directory to a link of its object, and that a
// tree built before data directories existed (redirects to the object
// paths) still mounts, its data directory made on the way.
func TestMetaFilesFitInInodes(t *testing.T) {
	st, _, tpl := craftedTemplate(t)
	metas, err := overlay.BuildMeta(st.Layers, tpl.Layers)
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.Layers.ReadLayer(tpl.Layers[0])
	if err != nil {
		t.Fatal(err)
	}
	data := overlay.DataDir(st.Layers, tpl.Layers[0])
	checked := 0
	for _, e := range m.Entries {
		if e.Type != layers.TypeReg || len(e.Xattrs) > 0 || e.Size == 0 {
			continue
		}
		var meta, obj unix.Stat_t
		p := filepath.Join(metas[0], e.Path)
		if err := unix.Lstat(p, &meta); err != nil {
			t.Fatal(err)
		}
		if meta.Blocks != 0 {
			t.Errorf("%s: metadata file uses %d blocks", e.Path, meta.Blocks)
		}
		redirect := make([]byte, 256)
		n, err := unix.Lgetxattr(p, "trusted.overlay.redirect", redirect)
		if err != nil {
			t.Fatal(err)
		}
		var link unix.Stat_t
		if err := unix.Stat(filepath.Join(data, string(redirect[:n])), &link); err != nil {
			t.Fatalf("%s: redirect %q: %v", e.Path, redirect[:n], err)
		}
		if err := unix.Stat(st.Layers.ObjectFile(e.Digest), &obj); err != nil {
			t.Fatal(err)
		}
		if link.Ino != obj.Ino {
			t.Errorf("%s: redirect %q is not a link of object %s", e.Path, redirect[:n], e.Digest)
		}
		checked++
	}
	if checked < 3 {
		t.Fatalf("only %d regular files checked", checked)
	}

	// df counts an object once, though a data directory names it too: as
	// du does for objects/ and layers/ together.
	u, err := st.DiskUsage()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("du", "-s", "-c", "-B1", st.Layers.ObjectsDir(), st.Layers.LayersDir()).Output()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	total, _ := strconv.ParseInt(strings.Fields(lines[len(lines)-1])[0], 10, 64)
	if u.DiskBytes != total {
		t.Errorf("df says %d bytes on disk, du -c %d", u.DiskBytes, total)
	}

	// The old form: no data directory, redirects to object paths.
	if err := os.RemoveAll(data); err != nil {
		t.Fatal(err)
	}
	for _, e := range m.Entries {
		if e.Type == layers.TypeReg && e.LinkTo == "" {
			old := "/" + layers.ObjectPath(e.Digest)
			if err := unix.Lsetxattr(filepath.Join(metas[0], e.Path), "trusted.overlay.redirect", []byte(old), 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	mnt, _ := mountTemplate(t, st, tpl, true)
	if got, _ := os.ReadFile(filepath.Join(mnt, "home/user/notes")); string(got) != "notes of user\n" {
		t.Errorf("tree of the old form: notes reads %q", got)
	}
	if _, err := os.Stat(data); err != nil {
		t.Errorf("the missing data directory was not made again: %v", err)
	}
}

// TestObjectOutOfLinks gives an object as many links as ext4 allows
// (65000) before the layer's data directory is made: the metadata file
// then redirects to the object's own path, and the file still reads.
func TestObjectOutOfLinks(t *testing.T) {
	testtree.RequireRoot(t)
	st, err := templates.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "popular"), []byte("read by many\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tpl := publish(t, st, "popular", src, nil)
	m, err := st.Layers.ReadLayer(tpl.Layers[0])
	if err != nil {
		t.Fatal(err)
	}
	obj := st.Layers.ObjectFile(m.Entries[1].Digest)
	links := filepath.Join(st.Layers.Root(), "links") // the same filesystem
	if err := os.Mkdir(links, 0o700); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		err := os.Link(obj, filepath.Join(links, fmt.Sprint(i)))
		if errors.Is(err, unix.EMLINK) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if i > 1<<20 {
			t.Skip("the store's filesystem has no small link limit")
		}
	}
	defer os.RemoveAll(links)
	mnt, _ := mountTemplate(t, st, tpl, true)
	if got, _ := os.ReadFile(filepath.Join(mnt, "popular")); string(got) != "read by many\n" {
		t.Errorf("popular reads %q", got)
	}
	redirect := make([]byte, 256)
	n, err := unix.Lgetxattr(filepath.Join(overlay.MetaDir(st.Layers, tpl.Layers[0]), "popular"), "trusted.overlay.redirect", redirect)
	if err != nil {
		t.Fatal(err)
	}
	if want := "/" + layers.ObjectPath(m.Entries[1].Digest); string(redirect[:n]) != want {
		t.Errorf("redirect %q, want the object path %q", redirect[:n], want)
	}
}
