package overlay_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/acetate/acetate/fs/overlay"
	"github.com/acetate/acetate/internal/testtree"
	"github.com/acetate/acetate/templates"
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
	fsckClean(t, st)
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
