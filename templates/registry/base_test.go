package registry

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/acetate/acetate/internal/testtree"
	"github.com/acetate/acetate/templates"
	"github.com/acetate/acetate/templates/oci/ocitest"
)

// A pulled application template names its base when the store has the
// very template it was stacked on; not when the store lacks it or has
// another template of that name; a plain template names none.
func TestPullKeepsBase(t *testing.T) {
	reg := startRegistry(t)
	st := ocitest.NewStore(t)
	appTree(t, st)
	push(t, st, "app:1", reg+"/acetate/app:1")
	push(t, st, "base:1", reg+"/acetate/base:1")

	other := filepath.Join(t.TempDir(), "other")
	testtree.Crafted(t, other)
	if err := os.WriteFile(filepath.Join(other, "other"), []byte("another base:1"), 0o644); err != nil {
		t.Fatal(err)
	}
	elsewhere := ocitest.NewStore(t)
	publish(t, elsewhere, "base:1", other, "")

	for _, c := range []struct {
		what     string
		st       *templates.Store
		src, ref string
		want     string
	}{
		{"base here", st, "app:1", "app:2", "base:1"},
		{"plain template", st, "base:1", "base:2", ""},
		{"no base here", ocitest.NewStore(t), "app:1", "app:1", ""},
		{"another base:1 here", elsewhere, "app:1", "app:1", ""},
	} {
		pull(t, c.st, reg+"/acetate/"+c.src, c.ref)
		got, err := c.st.Lookup(c.ref)
		if err != nil {
			t.Fatal(err)
		}
		if got.Base != c.want {
			t.Errorf("%s: pulled %s has base %q, want %q", c.what, c.ref, got.Base, c.want)
		}
	}
}
