package templates_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/acetate/acetate/internal/testtree"
	"github.com/acetate/acetate/internal/treecmp"
	"github.com/acetate/acetate/layers"
	"github.com/acetate/acetate/templates"
	"github.com/acetate/acetate/templates/storetest"
)

// Publishing the same tree twice stores nothing new and gives the same layer.
func TestRepublishStoresNothing(t *testing.T) {
	src := crafted(t)
	st := newStore(t)
	a := publish(t, st, "a", src, templates.PublishOptions{})
	before := snapshot(t, filepath.Join(st.Layers.Root(), "objects")) + snapshot(t, st.Layers.LayersDir())
	b := publish(t, st, "b", src, templates.PublishOptions{})
	after := snapshot(t, filepath.Join(st.Layers.Root(), "objects")) + snapshot(t, st.Layers.LayersDir())
	if a.Layers[0] != b.Layers[0] {
		t.Fatalf("same tree, different layers: %s %s", a.Layers[0], b.Layers[0])
	}
	if before != after {
		t.Fatal("re-publishing wrote objects or layers")
	}
	u, err := st.DiskUsage()
	if err != nil {
		t.Fatal(err)
	}
	if u.Savings < 1.9 {
		t.Fatalf("two identical templates: savings %.2f, want about 2", u.Savings)
	}
}

// An application template made --on a base holds only what differs, costs
// on disk only the new files, and exports as the full changed tree.
func TestApplicationTemplateOnDebian(t *testing.T) {
	testtree.RequireRoot(t)
	rootfs := testtree.DebianRootfs(t)
	deb := testtree.DebPackage(t, "tree")
	st := newStore(t)
	base := publish(t, st, "debian:12", rootfs, templates.PublishOptions{})

	app := filepath.Join(t.TempDir(), "app")
	testtree.CopyTree(t, rootfs, app)
	if out, err := exec.Command("dpkg-deb", "-x", deb, app).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -x: %v\n%s", err, out)
	}
	must(t, os.RemoveAll(filepath.Join(app, "usr/share/doc")))             // a deleted directory
	must(t, os.Remove(filepath.Join(app, "etc/hostname")))                 // a deleted file
	must(t, os.Chmod(filepath.Join(app, "etc/passwd"), 0o600))             // changed metadata only
	must(t, os.WriteFile(filepath.Join(app, "etc/motd"), []byte("hi"), 0)) // changed content

	ref := templates.MustParseRef("debian-tree:12")
	tp := publish(t, st, ref.String(), app, templates.PublishOptions{Base: &base.Ref})
	if len(tp.Layers) != 2 || tp.Layers[0] != base.Layers[0] {
		t.Fatalf("app template layers %v: want base layer + 1", tp.Layers)
	}
	top, err := st.Layers.ReadLayer(tp.Layers[1])
	must(t, err)
	whiteouts := map[string]bool{}
	for _, e := range top.Entries {
		if e.Type == layers.TypeWhiteout {
			whiteouts[e.Path] = true
		}
	}
	if !whiteouts["/usr/share/doc"] || !whiteouts["/etc/hostname"] || len(whiteouts) != 2 {
		t.Fatalf("whiteouts %v: want exactly /usr/share/doc and /etc/hostname", whiteouts)
	}
	if len(top.Entries) > 100 {
		t.Fatalf("the app layer has %d entries: it holds more than the difference", len(top.Entries))
	}
	out := filepath.Join(t.TempDir(), "out")
	export(t, st, tp, out)
	if err := treecmp.Compare(app, out, treecmp.Options{}); err != nil {
		t.Fatal(err)
	}

	in, err := st.Inspect(tp)
	must(t, err)
	debSize := fileSize(t, deb)
	if in.UniqueBytes > 4*debSize+64<<10 {
		t.Fatalf("app template has %d unique bytes on disk; the package is %d bytes", in.UniqueBytes, debSize)
	}
	baseIn, err := st.Inspect(base)
	must(t, err)
	if baseIn.SharedBytes == 0 || in.SharedBytes != baseIn.SharedBytes {
		t.Fatalf("shared bytes: base %d, app %d; want equal and non-zero", baseIn.SharedBytes, in.SharedBytes)
	}
	storetest.FsckClean(t, st)
}

func fileSize(t *testing.T, p string) int64 {
	fi, err := os.Stat(p)
	must(t, err)
	return fi.Size()
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// A flipped byte in an object or a manifest is named by fsck, and export of
// an affected template fails instead of returning wrong bytes.
func TestCorruptionIsFound(t *testing.T) {
	src := crafted(t)
	for _, what := range []string{"object", "manifest"} {
		t.Run(what, func(t *testing.T) {
			st := newStore(t)
			tp := publish(t, st, "crafted", src, templates.PublishOptions{})
			victim := filepath.Join(st.Layers.LayerDir(tp.Layers[0]), "manifest")
			wantPath := ""
			if what == "object" {
				m, err := st.Layers.ReadLayer(tp.Layers[0])
				must(t, err)
				for _, e := range m.Entries {
					if e.Path == "/bin/ping" {
						victim = st.Layers.ObjectFile(e.Digest)
					}
				}
				wantPath = "/bin/ping"
			}
			flipByte(t, victim)
			r, err := st.Fsck(context.Background(), nil)
			must(t, err)
			if r.OK() {
				t.Fatal("fsck found nothing")
			}
			p := r.Problems[0]
			if p.Template != "crafted:latest" || p.Path != wantPath {
				t.Fatalf("fsck problem %+v: want template crafted:latest path %q", p, wantPath)
			}
			for _, dst := range []string{filepath.Join(t.TempDir(), "out"), filepath.Join(t.TempDir(), "out.tar")} {
				if err := st.Export(context.Background(), tp, dst, nil); err == nil {
					t.Fatalf("export to %s of a corrupt template succeeded", dst)
				}
				if _, err := os.Stat(dst); err == nil {
					t.Fatalf("failed export left %s behind", dst)
				}
			}
		})
	}
}

func flipByte(t *testing.T, p string) {
	t.Helper()
	must(t, os.Chmod(p, 0o644))
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	must(t, err)
	defer f.Close()
	b := make([]byte, 1)
	_, err = f.ReadAt(b, 5)
	must(t, err)
	b[0] ^= 1
	_, err = f.WriteAt(b, 5)
	must(t, err)
}
