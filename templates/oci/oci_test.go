package oci_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/acetate/acetate/internal/testtree"
	"github.com/acetate/acetate/internal/treecmp"
	"github.com/acetate/acetate/layers"
	"github.com/acetate/acetate/templates"
	"github.com/acetate/acetate/templates/oci"
	"github.com/acetate/acetate/templates/oci/ocitest"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

var ctx = context.Background()

func need(t *testing.T, tools ...string) {
	t.Helper()
	testtree.RequireRoot(t)
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// layered publishes the crafted tree as a base and, on it, a changed copy
// (a file removed, a directory replaced by an opaque one, a file changed),
// and returns the application template and the changed tree.
func layered(t *testing.T, st *templates.Store) (*templates.Template, string) {
	t.Helper()
	base := filepath.Join(t.TempDir(), "base")
	testtree.Crafted(t, base)
	if _, err := st.Publish(ctx, templates.MustParseRef("base:1"), base, templates.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	app := filepath.Join(t.TempDir(), "app")
	testtree.CopyTree(t, base, app)
	for _, step := range []error{
		os.Remove(filepath.Join(app, "empty-file")),
		os.RemoveAll(filepath.Join(app, "links")),
		os.Mkdir(filepath.Join(app, "links"), 0o711),
		os.WriteFile(filepath.Join(app, "links", "new"), []byte("new"), 0o600),
		os.WriteFile(filepath.Join(app, "bin", "tool"), []byte("changed"), 0o755),
	} {
		if step != nil {
			t.Fatal(step)
		}
	}
	base1 := templates.MustParseRef("base:1")
	tp, err := st.Publish(ctx, templates.MustParseRef("app:1"), app, templates.PublishOptions{
		Base:   &base1,
		Config: templates.Config{Cmd: []string{"/bin/tool", "-x"}, Env: []string{"A=1"}, WorkingDir: "/home", User: "1000:1000"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return tp, app
}

// An exported layout is read by skopeo, unpacked by umoci to the template's
// tree, and is the same image, digest for digest, when exported again.
func TestExportLayoutUmoci(t *testing.T) {
	need(t, "skopeo", "umoci")
	st := ocitest.NewStore(t)
	tp, want := layered(t, st)
	dir := filepath.Join(t.TempDir(), "layout")
	if err := oci.ExportLayout(ctx, st, tp, dir, "v1", nil); err != nil {
		t.Fatal(err)
	}
	if out := run(t, "skopeo", "inspect", "oci:"+dir+":v1"); !strings.Contains(out, `"Layers"`) {
		t.Fatalf("skopeo inspect: %s", out)
	}
	bundle := filepath.Join(t.TempDir(), "bundle")
	run(t, "umoci", "unpack", "--image", dir+":v1", bundle)
	if err := treecmp.Compare(want, filepath.Join(bundle, "rootfs"), treecmp.Options{}); err != nil {
		t.Fatal(err)
	}
	again := filepath.Join(t.TempDir(), "again")
	if err := oci.ExportLayout(ctx, st, tp, again, "v1", nil); err != nil {
		t.Fatal(err)
	}
	if a, b := indexDigest(t, dir), indexDigest(t, again); a != b {
		t.Errorf("the same template exported twice gives images %s and %s", a, b)
	}
}

func indexDigest(t *testing.T, dir string) v1.Hash {
	t.Helper()
	ii, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	im, err := ii.IndexManifest()
	if err != nil || len(im.Manifests) != 1 {
		t.Fatalf("index of %s: %v %v", dir, im, err)
	}
	return im.Manifests[0].Digest
}

// A template exported as a layout and imported again is the same template:
// the same layers and config.
func TestLayoutRoundTrip(t *testing.T) {
	need(t)
	st := ocitest.NewStore(t)
	tp, _ := layered(t, st)
	dir := filepath.Join(t.TempDir(), "layout")
	if err := oci.ExportLayout(ctx, st, tp, dir, "v1", nil); err != nil {
		t.Fatal(err)
	}
	img, err := oci.OpenSource("oci:" + dir + ":v1")
	if err != nil {
		t.Fatal(err)
	}
	other := ocitest.NewStore(t)
	got, err := oci.Import(ctx, other, templates.MustParseRef("again:1"), img, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Layers, tp.Layers) {
		t.Errorf("layers after the round trip: %v, want %v", got.Layers, tp.Layers)
	}
	if g, w := strings.Join(got.Config.Cmd, " ")+"|"+strings.Join(got.Config.Env, ",")+"|"+got.Config.WorkingDir+"|"+got.Config.User,
		"/bin/tool -x|A=1|/home|1000:1000"; g != w {
		t.Errorf("config after the round trip: %s, want %s", g, w)
	}
}

// An image built by umoci (a base layer, an insert whose layer names no
// parent directories, a whiteout, an opaque replacement) imports to the tree
// umoci itself unpacks.
func TestImportUmociImage(t *testing.T) {
	need(t, "umoci")
	src := filepath.Join(t.TempDir(), "src")
	testtree.Crafted(t, src)
	extra := filepath.Join(t.TempDir(), "extra")
	if err := os.MkdirAll(filepath.Join(extra, "deep"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(extra, "deep", "file"), []byte("inserted"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "layout")
	img := dir + ":t"
	run(t, "umoci", "init", "--layout", dir)
	run(t, "umoci", "new", "--image", img)
	run(t, "umoci", "insert", "--image", img, src+"/", "/")
	run(t, "umoci", "insert", "--image", img, extra, "/home/user/extra")
	run(t, "umoci", "insert", "--image", img, "--whiteout", "/links/b")
	run(t, "umoci", "insert", "--image", img, "--opaque", extra, "/names")
	run(t, "umoci", "config", "--image", img, "--config.entrypoint", "/bin/sh", "--config.cmd", "-c", "--config.cmd", "echo hi", "--config.env", "K=V")
	want := filepath.Join(t.TempDir(), "bundle")
	run(t, "umoci", "unpack", "--image", img, want)

	st := ocitest.NewStore(t)
	image, err := oci.OpenSource("oci:" + img)
	if err != nil {
		t.Fatal(err)
	}
	tp, err := oci.Import(ctx, st, templates.MustParseRef("umoci:t"), image, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(tp.Layers) != 4 {
		t.Errorf("%d layers, want 4 (one per umoci insert)", len(tp.Layers))
	}
	if got := strings.Join(tp.Config.Cmd, " "); got != "/bin/sh -c echo hi" || !slices.Contains(tp.Config.Env, "K=V") {
		t.Errorf("config %+v: want Cmd /bin/sh -c echo hi and K=V in Env", tp.Config)
	}
	out := filepath.Join(t.TempDir(), "out")
	if err := st.Export(ctx, tp, out, nil); err != nil {
		t.Fatal(err)
	}
	if err := treecmp.Compare(filepath.Join(want, "rootfs"), out, treecmp.Options{}); err != nil {
		t.Fatal(err)
	}
}

// A docker save archive imports to the template it was made from.
func TestImportDockerArchive(t *testing.T) {
	need(t)
	st := ocitest.NewStore(t)
	tp, want := layered(t, st)
	img, err := oci.Image(ctx, st, tp, oci.ImageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "image.tar")
	if err := tarball.WriteToFile(file, name.MustParseReference("example.com/app:1"), img); err != nil {
		t.Fatal(err)
	}
	src, err := oci.OpenSource("docker-archive:" + file)
	if err != nil {
		t.Fatal(err)
	}
	other := ocitest.NewStore(t)
	got, err := oci.Import(ctx, other, templates.MustParseRef("docker:1"), src, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	if err := other.Export(ctx, got, out, nil); err != nil {
		t.Fatal(err)
	}
	if err := treecmp.Compare(want, out, treecmp.Options{}); err != nil {
		t.Fatal(err)
	}
}

// tarLayer makes an image layer from tar entries (name -> content).
func tarLayer(t *testing.T, entries ...string) v1.Layer {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, n := range entries {
		if err := tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(n))}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(n))
	}
	tw.Close()
	raw := b.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func writeLayout(t *testing.T, img v1.Image) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(img, layout.WithAnnotations(map[string]string{oci.RefNameAnnotation: "t"})); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Bad images are refused with an error naming the problem, and leave the
// store as it was: a layer escaping with "../", a blob whose bytes were
// changed, a missing ref, a directory that is not a layout.
func TestImportBadInput(t *testing.T) {
	need(t)
	st := ocitest.NewStore(t)
	if _, err := st.Publish(ctx, templates.MustParseRef("keep:1"), t.TempDir(), templates.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	before := ocitest.Listing(t, st)

	good := tarLayer(t, "etc/ok")
	escape, err := mutate.AppendLayers(empty.Image, good, tarLayer(t, "usr/x", "../../evil"))
	if err != nil {
		t.Fatal(err)
	}
	tampered := writeLayout(t, mustAppend(t, good, tarLayer(t, "usr/y")))
	flipLastLayerByte(t, tampered)

	cases := []struct {
		name, source string
		want         string
		is           error
	}{
		{"escape", "oci:" + writeLayout(t, escape) + ":t", `".."`, nil},
		{"tampered", "oci:" + tampered + ":t", "hashes to", layers.ErrCorrupt},
		{"unknown ref", "oci:" + tampered + ":nope", `no image named "nope"`, nil},
		{"not a layout", "oci:" + t.TempDir(), "not an OCI image layout", nil},
		{"bad kind", "docker:x", "use oci:DIR", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			img, err := oci.OpenSource(c.source)
			if err == nil {
				_, err = oci.Import(ctx, st, templates.MustParseRef("bad:1"), img, nil)
			}
			if err == nil || !strings.Contains(err.Error(), c.want) || (c.is != nil && !errors.Is(err, c.is)) {
				t.Fatalf("error %v, want one containing %s", err, c.want)
			}
			if after := ocitest.Listing(t, st); !slices.Equal(before, after) {
				t.Errorf("the store changed:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
}

func mustAppend(t *testing.T, ls ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, ls...)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// flipLastLayerByte changes one byte of the top layer blob of the only
// image in the layout at dir.
func flipLastLayerByte(t *testing.T, dir string) {
	t.Helper()
	img, err := oci.OpenSource("oci:" + dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	d := m.Layers[len(m.Layers)-1].Digest
	p := filepath.Join(dir, "blobs", d.Algorithm, d.Hex)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x40
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// An empty layer (as builders write for a config step) adds no layer; an
// image with nothing else is refused.
func TestImportSkipsEmptyLayers(t *testing.T) {
	need(t)
	st := ocitest.NewStore(t)
	img := mustAppend(t, tarLayer(t, "etc/a"), tarLayer(t), tarLayer(t, "etc/b"))
	got, err := oci.Import(ctx, st, templates.MustParseRef("two:1"), img, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Layers) != 2 {
		t.Errorf("%d layers, want 2", len(got.Layers))
	}
	if _, err := oci.Import(ctx, st, templates.MustParseRef("none:1"), mustAppend(t, tarLayer(t)), nil); err == nil || !strings.Contains(err.Error(), "no layers with content") {
		t.Errorf("import of an image with only an empty layer: %v", err)
	}
}
