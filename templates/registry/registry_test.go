package registry

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/acetate/acetate/internal/testtree"
	"github.com/acetate/acetate/internal/treecmp"
	"github.com/acetate/acetate/templates"
	"github.com/acetate/acetate/templates/oci/ocitest"
	"github.com/acetate/acetate/templates/storetest"
)

// appTree publishes the crafted tree as base:1 and, on it, app:1: a copy
// with a directory removed, a file changed and files added. It returns the
// application tree.
func appTree(t *testing.T, st *templates.Store) string {
	t.Helper()
	base := filepath.Join(t.TempDir(), "base")
	testtree.Crafted(t, base)
	publish(t, st, "base:1", base, "")
	app := filepath.Join(t.TempDir(), "app")
	testtree.CopyTree(t, base, app)
	for _, err := range []error{
		os.RemoveAll(filepath.Join(app, "names")),
		os.WriteFile(filepath.Join(app, "bin", "ping"), []byte("new ping"), 0o755),
		os.MkdirAll(filepath.Join(app, "opt", "app"), 0o755),
		os.WriteFile(filepath.Join(app, "opt", "app", "run"), random(100<<10), 0o755),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	publish(t, st, "app:1", app, "base:1")
	return app
}

// random returns n bytes that do not compress.
func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// publish → push → rm + gc → pull → export equals the original tree; a
// second store pulls it too; both stores stay consistent.
func TestPushPullRoundTrip(t *testing.T) {
	reg := startRegistry(t)
	st := ocitest.NewStore(t)
	want := appTree(t, st)
	orig, _ := st.Lookup("app:1")
	push(t, st, "app:1", reg+"/acetate/app:1")
	for _, ref := range []string{"app:1", "base:1"} {
		if err := st.Remove(templates.MustParseRef(ref)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.GC(ctx); err != nil {
		t.Fatal(err)
	}
	got := pull(t, st, reg+"/acetate/app:1", "app:1")
	if len(got.Layers) != 2 || got.Layers[1] != orig.Layers[1] {
		t.Errorf("pulled layers %v, pushed %v", got.Layers, orig.Layers)
	}
	if err := treecmp.Compare(want, exportDir(t, st, got), treecmp.Options{}); err != nil {
		t.Fatal(err)
	}
	storetest.FsckClean(t, st)

	other := ocitest.NewStore(t)
	again := pull(t, other, reg+"/acetate/app:1", "copy:2")
	if err := treecmp.Compare(want, exportDir(t, other, again), treecmp.Options{}); err != nil {
		t.Fatal(err)
	}
	storetest.FsckClean(t, other)
}

// A pushed template is a plain image to skopeo and umoci; an image that
// umoci changed and skopeo copied from an OCI layout is pulled by importing
// its layers.
func TestInteropSkopeoUmoci(t *testing.T) {
	reg := startRegistry(t)
	st := ocitest.NewStore(t)
	want := appTree(t, st)
	push(t, st, "app:1", reg+"/acetate/app:1")

	dir := filepath.Join(t.TempDir(), "layout")
	run(t, "skopeo", "copy", "--src-tls-verify=false", "docker://"+reg+"/acetate/app:1", "oci:"+dir+":1")
	bundle := filepath.Join(t.TempDir(), "bundle")
	run(t, "umoci", "unpack", "--image", dir+":1", bundle)
	if err := treecmp.Compare(want, filepath.Join(bundle, "rootfs"), treecmp.Options{}); err != nil {
		t.Fatalf("umoci unpack of the pushed image: %v", err)
	}

	// Changed by umoci and pushed to the same repository, where the artifact
	// of the original still is: the pull imports the changed image.
	run(t, "umoci", "config", "--image", dir+":1", "--tag", "2", "--config.cmd", "/bin/true")
	run(t, "skopeo", "copy", "--dest-tls-verify=false", "oci:"+dir+":2", "docker://"+reg+"/acetate/app:2")
	other := ocitest.NewStore(t)
	got := pull(t, other, reg+"/acetate/app:2", "plain:2")
	if len(got.Config.Cmd) != 1 || got.Config.Cmd[0] != "/bin/true" {
		t.Errorf("config %+v: want Cmd /bin/true", got.Config)
	}
	if err := treecmp.Compare(want, exportDir(t, other, got), treecmp.Options{}); err != nil {
		t.Fatalf("pull of a plain image: %v", err)
	}
	storetest.FsckClean(t, other)
}

// A push sends only the blobs the registry lacks: pushing a template that
// differs from a pushed one by one file sends that file's pack, the layer
// blob and the image layer that changed, not the objects again.
func TestPushSendsOnlyNewBlobs(t *testing.T) {
	reg := startRegistry(t)
	p := startProxy(t, reg)
	st := ocitest.NewStore(t)
	want := appTree(t, st)
	push(t, st, "app:1", p.addr+"/acetate/app:1")
	first := p.sent.Load()
	if err := os.WriteFile(filepath.Join(want, "opt", "app", "new"), random(200<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	publish(t, st, "app:2", want, "base:1")
	push(t, st, "app:2", p.addr+"/acetate/app:2")
	second := p.sent.Load() - first
	t.Logf("first push sent %d bytes, the second (one 200 KiB file more) %d", first, second)
	if second > 3*(200<<10)+64<<10 {
		t.Errorf("the second push sent %d bytes for a 200 KiB change", second)
	}
}
