package templates_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/acetate/acetate/internal/testtree"
	"github.com/acetate/acetate/internal/treecmp"
	"github.com/acetate/acetate/templates"
	"github.com/acetate/acetate/templates/storetest"
)

func newStore(t testing.TB) *templates.Store {
	t.Helper()
	st, err := templates.Open(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func publish(t testing.TB, st *templates.Store, ref, src string, opts templates.PublishOptions) *templates.Template {
	t.Helper()
	tp, err := st.Publish(context.Background(), templates.MustParseRef(ref), src, opts)
	if err != nil {
		t.Fatalf("publish %s from %s: %v", ref, src, err)
	}
	return tp
}

func export(t *testing.T, st *templates.Store, tp *templates.Template, dst string) {
	t.Helper()
	if err := st.Export(context.Background(), tp, dst, nil); err != nil {
		t.Fatalf("export %s to %s: %v", tp.Ref, dst, err)
	}
}

func crafted(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "crafted")
	testtree.Crafted(t, dir)
	return dir
}

// The export of a published tree equals the source in every respect, and
// holes in sparse files stay holes.
func TestFidelityCraftedDir(t *testing.T) {
	src := crafted(t)
	st := newStore(t)
	tp := publish(t, st, "crafted", src, templates.PublishOptions{})
	out := filepath.Join(t.TempDir(), "out")
	export(t, st, tp, out)
	if err := treecmp.Compare(src, out, treecmp.Options{}); err != nil {
		t.Fatal(err)
	}
	srcTree, _ := treecmp.Read(src, treecmp.Options{})
	outTree, _ := treecmp.Read(out, treecmp.Options{})
	if got, want := outTree.Entries["/sparse"].Blocks, srcTree.Entries["/sparse"].Blocks; got > want {
		t.Errorf("sparse file export uses %d blocks, source %d: holes were filled", got, want)
	}
	storetest.FsckClean(t, st)
}

// A tree goes through a tar export and back into the store unchanged: the
// same layer digest, and the same tree when extracted by GNU tar.
func TestFidelityTarRoundTrip(t *testing.T) {
	src := crafted(t)
	st := newStore(t)
	tp := publish(t, st, "crafted", src, templates.PublishOptions{})
	for _, name := range []string{"t.tar", "t.tar.gz", "t.tar.zst"} {
		t.Run(name, func(t *testing.T) {
			tarball := filepath.Join(t.TempDir(), name)
			export(t, st, tp, tarball)
			again := publish(t, st, "again", tarball, templates.PublishOptions{})
			if again.Layers[0] != tp.Layers[0] {
				t.Fatalf("tar round trip changed the layer: %s != %s", again.Layers[0], tp.Layers[0])
			}
		})
	}
	tarball := filepath.Join(t.TempDir(), "plain.tar")
	export(t, st, tp, tarball)
	out := filepath.Join(t.TempDir(), "gnutar")
	os.Mkdir(out, 0o755)
	cmd := exec.Command("tar", "--xattrs", "--xattrs-include=*", "--same-owner", "-xpf", tarball, "-C", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("GNU tar extract: %v\n%s", err, b)
	}
	if err := treecmp.Compare(src, out, treecmp.Options{}); err != nil {
		t.Fatal(err)
	}
}

// A real Debian rootfs survives publish and export, directory and tar.
func TestFidelityDebian(t *testing.T) {
	testtree.RequireRoot(t)
	src := testtree.DebianRootfs(t)
	st := newStore(t)
	tp := publish(t, st, "debian:12", src, templates.PublishOptions{})
	out := filepath.Join(t.TempDir(), "out")
	export(t, st, tp, out)
	if err := treecmp.Compare(src, out, treecmp.Options{}); err != nil {
		t.Fatal(err)
	}
	tarball := filepath.Join(t.TempDir(), "debian.tar.zst")
	export(t, st, tp, tarball)
	again := publish(t, st, "debian:tar", tarball, templates.PublishOptions{})
	if again.Layers[0] != tp.Layers[0] {
		t.Fatalf("tar round trip changed the Debian layer")
	}
	storetest.FsckClean(t, st)
}

func writeFile(p, s string) error { return os.WriteFile(p, []byte(s), 0o644) }
