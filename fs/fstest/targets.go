package fstest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/acetate/acetate/fs"
	"github.com/acetate/acetate/internal/testtree"
	"github.com/acetate/acetate/layers"
	"github.com/acetate/acetate/layers/layerstest"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// Target is one filesystem the table runs on.
type Target struct {
	// Name names the target in subtest names ("plain", "overlay", "fuse").
	Name string
	// Mount mounts a union over e.Fixture with upper directory e.Upper and
	// scratch directory e.Work, unmounts it in t.Cleanup, and returns the
	// mount point. e.Upper is empty, or, when the runner checks another
	// target's result, that target's upper directory.
	Mount func(t *testing.T, e *Env) string
	// Upper says the target keeps its changes in e.Upper in overlayfs
	// format; a target without it (a plain directory) is only compared by
	// its tree.
	Upper bool
	// Deviations names the cases the target is known to fail, with the
	// reason; the runner skips them on this target and says why.
	Deviations map[string]string
}

// Env is what a target mounts: the fixture and the directories of one
// mount.
type Env struct {
	// Fixture is the template tree, a plain directory never changed.
	Fixture string
	// Upper and Work are the container's directories, on one filesystem.
	Upper, Work string

	published *published
}

// published is the fixture stored as a one-layer template, made once per
// run.
type published struct {
	once   sync.Once
	store  *layers.Store
	layer  digest.Digest
	err    error
	tmpDir string
}

// Published returns a store holding the fixture as one layer, publishing
// it on first use.
func (e *Env) Published(t *testing.T) (*layers.Store, []digest.Digest) {
	t.Helper()
	p := e.published
	p.once.Do(func() {
		p.store, p.err = layers.Open(filepath.Join(p.tmpDir, "store"))
		if p.err != nil {
			return
		}
		p.layer, p.err = layerstest.CommitDir(p.store, e.Fixture)
	})
	if p.err != nil {
		t.Fatalf("publish fixture: %v", p.err)
	}
	return p.store, []digest.Digest{p.layer}
}

// PlainDir is the reference target: a copy of the fixture, no union.
func PlainDir() Target {
	return Target{Name: "plain", Mount: func(t *testing.T, e *Env) string {
		dst := filepath.Join(t.TempDir(), "plain")
		testtree.CopyTree(t, e.Fixture, dst)
		return dst
	}}
}

// KernelOverlay mounts kernel overlayfs with the fixture as its one lower
// directory, with metacopy=on and redirect_dir=on as the overlay driver
// mounts: a chmod copies up metadata only, and a renamed directory gets a
// redirect.
func KernelOverlay() Target {
	return Target{Name: "kernel-overlay", Upper: true, Deviations: overlayHardlinks, Mount: func(t *testing.T, e *Env) string {
		mnt := t.TempDir()
		opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s,metacopy=on,redirect_dir=on,index=off", e.Fixture, e.Upper, e.Work)
		if err := unix.Mount("overlay", mnt, "overlay", 0, opts); err != nil {
			t.Skipf("kernel overlayfs: mount %s: %v", opts, err)
		}
		t.Cleanup(func() { unmount(t, mnt, func(p string) error { return unix.Unmount(p, 0) }) })
		return mnt
	}}
}

// overlayHardlinks are the cases kernel overlayfs without index=on fails:
// a copy-up breaks a hardlink group, and nlink counts lower links.
var overlayHardlinks = map[string]string{
	"chown/lower-hardlinked":      "overlayfs with index=off copies up one link of a hardlink group and breaks the group",
	"hardlink/copyup-keeps-group": "overlayfs with index=off copies up one link of a hardlink group and breaks the group",
	"hardlink/unlink-one":         "overlayfs reports the lower nlink of a file whose other link was deleted",
}

// DriverTarget mounts the fixture, published into a store as one layer,
// with driver d.
func DriverTarget(d fs.Driver) Target {
	return Target{Name: d.Name(), Upper: true, Mount: func(t *testing.T, e *Env) string {
		store, stack := e.Published(t)
		mnt := t.TempDir()
		spec := fs.Spec{Store: store, Layers: stack, Upper: e.Upper, Work: e.Work, Target: mnt}
		if err := d.Mount(context.Background(), spec); err != nil {
			t.Fatalf("%s mount: %v", d.Name(), err)
		}
		t.Cleanup(func() { unmount(t, mnt, d.Unmount) })
		return mnt
	}}
}

// newEnv makes fresh upper and work directories for one mount.
func newEnv(t *testing.T, fixture string, p *published) *Env {
	dir := t.TempDir()
	e := &Env{Fixture: fixture, Upper: filepath.Join(dir, "upper"), Work: filepath.Join(dir, "work"), published: p}
	for _, d := range []string{e.Upper, e.Work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// unmount unmounts mnt with um, and detaches it when that fails (a failed
// case may leave files open) so that removing the test's directories
// never walks into a mount.
func unmount(t *testing.T, mnt string, um func(string) error) {
	if err := um(mnt); err != nil {
		t.Errorf("unmount %s: %v", mnt, err)
		if err := unix.Unmount(mnt, unix.MNT_DETACH); err != nil {
			t.Errorf("detach %s: %v", mnt, err)
		}
	}
}
