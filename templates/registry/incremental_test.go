package registry

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/acetate/acetate/internal/testtree"
	"github.com/acetate/acetate/internal/treecmp"
	"github.com/acetate/acetate/layers"
	"github.com/acetate/acetate/templates"
	"github.com/acetate/acetate/templates/oci/ocitest"
	"github.com/acetate/acetate/templates/storetest"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// pulled pulls src into st through p and returns the bytes p passed.
func pulled(t *testing.T, p *proxy, st *templates.Store, src, ref string) (*templates.Template, int64) {
	t.Helper()
	before := p.bytes.Load()
	tp := pull(t, st, p.addr+"/"+src, ref)
	return tp, p.bytes.Load() - before
}

// imageBytes is the compressed size of the layers of image ref.
func imageBytes(t *testing.T, ref string) int64 {
	t.Helper()
	r, err := ParseReference(ref, insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r, insecure.remoteOptions(ctx)...)
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, l := range m.Layers {
		n += l.Size
	}
	return n
}

func treeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// A host that has Debian pulls Debian-plus-one-package (published flat, as
// one layer, and as an application layer on Debian) by fetching about that
// package, not the whole image. Bytes are counted by a proxy in front of the
// registry.
func TestIncrementalPull(t *testing.T) {
	reg := startRegistry(t)
	rootfs := testtree.DebianRootfs(t)
	deb := testtree.DebPackage(t, "tree")
	src := ocitest.NewStore(t)
	publish(t, src, "debian:12", rootfs, "")
	withPkg := filepath.Join(t.TempDir(), "rootfs")
	testtree.CopyTree(t, rootfs, withPkg)
	pkg := filepath.Join(t.TempDir(), "pkg")
	run(t, "dpkg-deb", "-x", deb, pkg)
	run(t, "dpkg-deb", "-x", deb, withPkg)
	publish(t, src, "debian-tree:flat", withPkg, "")
	publish(t, src, "debian-tree:app", withPkg, "debian:12")
	for _, ref := range []string{"debian:12", "debian-tree:flat", "debian-tree:app"} {
		push(t, src, ref, reg+"/os/"+ref)
	}

	p := startProxy(t, reg)
	dst := ocitest.NewStore(t)
	_, full := pulled(t, p, dst, "os/debian:12", "debian:12")
	_, appBytes := pulled(t, p, dst, "os/debian-tree:app", "app:1")
	// Forget the package's objects, so that the flat pull must fetch them.
	if err := dst.Remove(templates.MustParseRef("app:1")); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.GC(ctx); err != nil {
		t.Fatal(err)
	}
	flat, flatBytes := pulled(t, p, dst, "os/debian-tree:flat", "flat:1")
	_, again := pulled(t, p, dst, "os/debian-tree:flat", "flat:2")

	debInfo, err := os.Stat(deb)
	if err != nil {
		t.Fatal(err)
	}
	installed := treeBytes(t, pkg)
	flatTemplate, _ := src.Lookup("debian-tree:flat")
	m, err := src.Layers.ReadLayer(flatTemplate.Layers[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("package tree: %d bytes .deb, %d bytes installed", debInfo.Size(), installed)
	t.Logf("full pull of Debian: %d bytes (image layer, gzip: %d bytes)", full, imageBytes(t, reg+"/os/debian:12"))
	t.Logf("incremental pull of Debian+tree: application layer %d bytes; flat layer %d bytes (its whole manifest would be %d bytes, zstd); pulled again: %d bytes",
		appBytes, flatBytes, len(layers.Compress(m.Encode())), again)

	if err := treecmp.Compare(withPkg, exportDir(t, dst, flat), treecmp.Options{}); err != nil {
		t.Fatal(err)
	}
	// Overhead allowed: the flat layer's pack list, the manifest chunks
	// and the packs around the package's files.
	if limit := installed + 256<<10; flatBytes > limit || appBytes > limit {
		t.Errorf("incremental pulls fetched %d and %d bytes, more than the package (%d bytes installed) + 256 KiB", flatBytes, appBytes, installed)
	}
	if appBytes < debInfo.Size()/2 {
		t.Errorf("the application layer pull fetched %d bytes, less than the package holds: its objects were not fetched?", appBytes)
	}
	if again > 64<<10 {
		t.Errorf("pulling a template the store has fetched %d bytes", again)
	}
	storetest.FsckClean(t, dst)
}
