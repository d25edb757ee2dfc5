package fuse

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/acetate/acetate/internal/testtree"
	"github.com/acetate/acetate/internal/treecmp"
	"github.com/acetate/acetate/layers/layerstest"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// A prune has the kernel forget what nothing in the mount uses, and only
// that. After a walk of a 300-file tree, the server keeps the nodes of a
// file held open, of a directory a mount sits on (a container's own
// mounts: an entry invalidation would detach them from under it) and of
// the directories above them; the open file reads on, the mount stays, and
// the whole tree, looked up again, reads the same as its source.
func TestPruneForgetsWhatNothingUses(t *testing.T) {
	testtree.RequireRoot(t)
	tmp := t.TempDir()
	src := writeTree(t, tmp, 300, func(i int) string { return fmt.Sprintf("d%d/sub/f%d", i/30, i%30) })
	s, layer := serverOf(t, tmp, src)
	req, u := mountWalked(t, s, src, filepath.Join(tmp, "c"), layer)
	if n := len(known(u)); n < 300 {
		t.Fatalf("%d nodes after a walk of 300 files; the prune would prove nothing", n)
	}

	open, err := os.Open(filepath.Join(req.Target, "d3/sub/f7"))
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	elsewhere := t.TempDir()
	if err := os.WriteFile(filepath.Join(elsewhere, "marker"), []byte("bound"), 0o644); err != nil {
		t.Fatal(err)
	}
	mountPoint := filepath.Join(req.Target, "d5")
	if err := unix.Mount(elsewhere, mountPoint, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(mountPoint, unix.MNT_DETACH) })

	prune(u)
	want := []string{"d3", "d3/sub", "d3/sub/f7", "d5"}
	waitFor(t, func() bool { return slices.Equal(known(u), want) }, fmt.Sprintf("nodes %v only", want))

	if b, err := io.ReadAll(open); err != nil || string(b) != filepath.Join(src, "d3/sub/f7") {
		t.Fatalf("the open file after the prune: %q, %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(mountPoint, "marker")); err != nil || string(b) != "bound" {
		t.Fatalf("the mount on d5 after the prune: %q, %v", b, err)
	}
	if err := unix.Unmount(mountPoint, 0); err != nil {
		t.Fatal(err)
	}
	if err := treecmp.Compare(src, req.Target, treecmp.Options{IgnoreDirMtime: true}); err != nil {
		t.Fatalf("the tree looked up again after the prune: %v", err)
	}
}

// The server prunes a mount once it has gone quiet after its lookups,
// whatever the others do: of two mounts walked alike, the one left alone
// loses its nodes within seconds while the one still looking names up
// keeps them, and loses them once quiet in its turn.
func TestQuietMountPruned(t *testing.T) {
	testtree.RequireRoot(t)
	tmp := t.TempDir()
	src := writeTree(t, tmp, 100, func(i int) string { return fmt.Sprintf("d%d/f%d", i%10, i) })
	s, layer := serverOf(t, tmp, src)
	_, quiet := mountWalked(t, s, src, filepath.Join(tmp, "quiet"), layer)
	busy, busyU := mountWalked(t, s, src, filepath.Join(tmp, "busy"), layer)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.pruneQuietMounts(ctx)

	deadline := time.Now().Add(pruneQuiet + 3*pruneTick)
	for i := 0; time.Now().Before(deadline); i++ {
		os.Lstat(filepath.Join(busy.Target, fmt.Sprint("absent", i))) // a new name: a lookup
		time.Sleep(pruneQuiet / 20)
	}
	if k := known(quiet); len(k) != 0 {
		t.Errorf("the quiet mount holds nodes %v after %v quiet, want none", k, pruneQuiet+3*pruneTick)
	}
	if n := len(known(busyU)); n < 110 {
		t.Errorf("the busy mount holds %d nodes, want its 110 and more", n)
	}
	waitFor(t, func() bool { return len(known(busyU)) == 0 }, "prune of the busy mount once quiet")
}

// writeTree writes n files under tmp/src, file i at name(i) holding its
// own path, and returns tmp/src.
func writeTree(t *testing.T, tmp string, n int, name func(i int) string) string {
	t.Helper()
	src := filepath.Join(tmp, "src")
	for i := range n {
		p := filepath.Join(src, name(i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(p), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return src
}

// serverOf is a test server over a store holding src as a layer.
func serverOf(t *testing.T, tmp, src string) (*storeServer, digest.Digest) {
	t.Helper()
	store, layer := layerstest.StoreOf(t, filepath.Join(tmp, "store"), src)
	return newTestServer(store, io.Discard), layer
}

// mountWalked mounts layer through s in dir, walks it against src, and
// returns the mount's request and root node; it skips the test on a
// kernel without the prune notification.
func mountWalked(t *testing.T, s *storeServer, src, dir string, layer digest.Digest) (*mountRequest, *union) {
	t.Helper()
	before := maps.Clone(s.mounts)
	req := newMountRequest(t, dir, []digest.Digest{layer})
	mountThrough(t, s, req)
	if err := treecmp.Compare(src, req.Target, treecmp.Options{IgnoreDirMtime: true}); err != nil {
		t.Fatal(err)
	}
	for u := range s.mounts {
		if _, ok := before[u]; ok {
			continue
		}
		if u.server.Load().PruneNotify(nil) == fuse.ENOSYS {
			t.Skip("this kernel's FUSE has no prune notification (FUSE protocol 7.45)")
		}
		return req, u
	}
	t.Fatal("no new mount")
	return nil, nil
}

// known lists the paths of the nodes the server holds for mount u, sorted.
func known(u *union) []string {
	u.tree.Lock()
	defer u.tree.Unlock()
	var paths []string
	var walk func(n *node, dir string)
	walk = func(n *node, dir string) {
		for name, c := range n.kids {
			p := path.Join(dir, name)
			paths = append(paths, p)
			walk(c, p)
		}
	}
	walk(u.root, "")
	slices.Sort(paths)
	return paths
}
