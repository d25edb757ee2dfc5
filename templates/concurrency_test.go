package templates_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/acetate/acetate/internal/testtree"
	"github.com/acetate/acetate/internal/treecmp"
	"github.com/acetate/acetate/templates"
	"github.com/acetate/acetate/templates/storetest"
	"github.com/opencontainers/go-digest"
)

// Two publishes and GC running at once corrupt nothing, and GC never removes
// what a publish is about to reference: every template exports intact.
func TestConcurrentPublishAndGC(t *testing.T) {
	testtree.RequireRoot(t)
	srcA := crafted(t)
	srcB := filepath.Join(t.TempDir(), "b")
	testtree.CopyTree(t, srcA, srcB)
	must(t, writeFile(filepath.Join(srcB, "only-in-b"), "b"))
	st := newStore(t)
	// Garbage for GC to find: a template removed before the race.
	old := publish(t, st, "old", srcB, templates.PublishOptions{})
	must(t, st.Remove(old.Ref))

	for round := range 5 {
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for i, src := range []string{srcA, srcB} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ref := templates.MustParseRef([]string{"a", "b"}[i])
				_, err := st.Publish(context.Background(), ref, src, templates.PublishOptions{})
				errs <- err
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := st.GC(context.Background())
			errs <- err
		}()
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		storetest.FsckClean(t, st)
		for i, src := range []string{srcA, srcB} {
			tp, err := st.Lookup([]string{"a", "b"}[i])
			must(t, err)
			out := filepath.Join(t.TempDir(), "out")
			export(t, st, tp, out)
			if err := treecmp.Compare(src, out, treecmp.Options{}); err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		// Remove one, so the next GC has work racing the next publish.
		must(t, st.Remove(templates.MustParseRef("b")))
	}
}

// GC removes what no template uses, and keeps what an extra root names.
func TestGCRemovesOnlyUnreferenced(t *testing.T) {
	src := crafted(t)
	st := newStore(t)
	tp := publish(t, st, "a", src, templates.PublishOptions{})
	r, err := st.GC(context.Background())
	must(t, err)
	if r.Objects != 0 || r.Layers != 0 {
		t.Fatalf("GC removed live data: %+v", r)
	}
	must(t, st.Remove(tp.Ref))
	keep := func() ([]digest.Digest, error) { return tp.Layers, nil }
	r, err = st.GC(context.Background(), keep)
	must(t, err)
	if r.Objects != 0 || r.Layers != 0 {
		t.Fatalf("GC removed a layer an extra root keeps: %+v", r)
	}
	r, err = st.GC(context.Background())
	must(t, err)
	if r.Layers != 1 || r.Objects == 0 {
		t.Fatalf("GC of an unreferenced template: %+v", r)
	}
	u, err := st.DiskUsage()
	must(t, err)
	if u.Objects != 0 || u.Layers != 0 {
		t.Fatalf("store not empty after GC: %+v", u)
	}
	storetest.FsckClean(t, st)
}
