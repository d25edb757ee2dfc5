package overlay_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/acetate/acetate/fs"
	"github.com/acetate/acetate/fs/overlay"
	"github.com/acetate/acetate/fs/upper"
	"github.com/acetate/acetate/internal/testtree"
	"github.com/acetate/acetate/internal/treecmp"
	"github.com/acetate/acetate/templates"
	"github.com/acetate/acetate/templates/storetest"
	"golang.org/x/sys/unix"
)

// publish makes a store in a temp dir holding src as template ref.
func publish(t *testing.T, st *templates.Store, ref, src string, base *templates.Ref) *templates.Template {
	t.Helper()
	tpl, err := st.Publish(context.Background(), templates.MustParseRef(ref), src, templates.PublishOptions{Base: base})
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

// craftedTemplate publishes the crafted test tree (src) as template
// "crafted" in a new store.
func craftedTemplate(t *testing.T) (st *templates.Store, src string, tpl *templates.Template) {
	t.Helper()
	testtree.RequireRoot(t)
	src = filepath.Join(t.TempDir(), "src")
	testtree.Crafted(t, src)
	st, err := templates.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return st, src, publish(t, st, "crafted", src, nil)
}

// mountTemplate mounts tpl with a fresh upper dir and returns the mount
// point; it is unmounted at cleanup.
func mountTemplate(t *testing.T, st *templates.Store, tpl *templates.Template, readOnly bool) (target, upperDir string) {
	t.Helper()
	dir := t.TempDir()
	s := fs.Spec{Store: st.Layers, Layers: tpl.Layers, Upper: filepath.Join(dir, "upper"),
		Work: filepath.Join(dir, "work"), Target: filepath.Join(dir, "mnt"), ReadOnly: readOnly}
	for _, d := range []string{s.Work, s.Target} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	metas, err := overlay.BuildMeta(st.Layers, tpl.Layers)
	if err != nil {
		t.Fatal(err)
	}
	rootMeta, err := overlay.RootMeta(st.Layers, tpl.Layers, metas)
	if err != nil {
		t.Fatal(err)
	}
	root, err := upper.RootEntry(rootMeta)
	if err != nil {
		t.Fatal(err)
	}
	if err := upper.Init(s.Upper, root); err != nil {
		t.Fatal(err)
	}
	if err := (overlay.Driver{}).Mount(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := (overlay.Driver{}).Unmount(s.Target); err != nil {
			t.Error(err)
		}
	})
	return s.Target, s.Upper
}

// TestMountShowsTemplate compares a read-only mount of a template with the
// plain directory it was published from.
func TestMountShowsTemplate(t *testing.T) {
	st, src, tpl := craftedTemplate(t)
	for _, ro := range []bool{true, false} {
		mnt, _ := mountTemplate(t, st, tpl, ro)
		if err := treecmp.Compare(src, mnt, treecmp.Options{}); err != nil {
			t.Errorf("read-only=%v: %v", ro, err)
		}
	}
	storetest.FsckClean(t, st)
}

// TestMountNoDevNoSuid: a template's device node (c 1:3 here; the attack
// ships the host's disk or /dev/kmsg) must not open through the host's
// mount of a container root, and a set-uid binary there must not run
// set-uid on the host. (Inside the container, the runtime's own mount of
// the root honours set-uid.)
func TestMountNoDevNoSuid(t *testing.T) {
	st, _, tpl := craftedTemplate(t)
	for _, ro := range []bool{true, false} {
		mnt, _ := mountTemplate(t, st, tpl, ro)
		f, err := os.Open(filepath.Join(mnt, "dev/null"))
		if err == nil {
			f.Close()
			t.Errorf("read-only=%v: a template's device node opened on the host", ro)
		} else if !errors.Is(err, unix.EACCES) {
			t.Errorf("read-only=%v: open of a template's device node: %v, want EACCES", ro, err)
		}
		var sfs unix.Statfs_t
		if err := unix.Statfs(mnt, &sfs); err != nil {
			t.Fatal(err)
		}
		if sfs.Flags&unix.ST_NOSUID == 0 || sfs.Flags&unix.ST_NODEV == 0 {
			t.Errorf("read-only=%v: mount flags %#x lack nosuid or nodev", ro, sfs.Flags)
		}
	}
}
