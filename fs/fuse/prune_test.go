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
	"syscall"
	"testing"
	"time"

	"github.com/acetate/acetate/internal/testtree"
	"github.com/acetate/acetate/internal/treecmp"
	"github.com/hanwen/go-fuse/v2/fs"
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
	src := filepath.Join(tmp, "src")
	for d := range 10 {
		for f := range 30 {
			p := filepath.Join(src, fmt.Sprintf("d%d/sub/f%d", d, f))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(p), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	store, layer := storeOf(t, tmp, src)
	s := newTestServer(store, io.Discard)
	req := newMountRequest(t, filepath.Join(tmp, "c"), []digest.Digest{layer})
	mountThrough(t, s, req)
	if err := treecmp.Compare(src, req.Target, treecmp.Options{IgnoreDirMtime: true}); err != nil {
		t.Fatal(err)
	}
	var root *fs.Inode
	for u := range s.mounts {
		root = &u.root.Inode
	}
	if root.NotifyPrune(nil) == syscall.ENOSYS {
		t.Skip("this kernel's FUSE has no prune notification (FUSE protocol 7.45)")
	}
	if n := len(known(root)); n < 300 {
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

	prune(root)
	want := []string{"d3", "d3/sub", "d3/sub/f7", "d5"}
	waitFor(t, func() bool { return slices.Equal(known(root), want) }, fmt.Sprintf("nodes %v only", want))

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
	src := filepath.Join(tmp, "src")
	for f := range 100 {
		p := filepath.Join(src, fmt.Sprintf("d%d/f%d", f%10, f))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	store, layer := storeOf(t, tmp, src)
	s := newTestServer(store, io.Discard)
	// mountWalked mounts the tree and walks it, and returns the new root.
	mountWalked := func(name string) (*mountRequest, *fs.Inode) {
		before := maps.Clone(s.mounts)
		req := newMountRequest(t, filepath.Join(tmp, name), []digest.Digest{layer})
		mountThrough(t, s, req)
		if err := treecmp.Compare(src, req.Target, treecmp.Options{IgnoreDirMtime: true}); err != nil {
			t.Fatal(err)
		}
		for u := range s.mounts {
			if _, ok := before[u]; !ok {
				return req, &u.root.Inode
			}
		}
		t.Fatal("no new mount")
		return nil, nil
	}
	_, quietRoot := mountWalked("quiet")
	busy, busyRoot := mountWalked("busy")
	if quietRoot.NotifyPrune(nil) == syscall.ENOSYS {
		t.Skip("this kernel's FUSE has no prune notification (FUSE protocol 7.45)")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.pruneQuietMounts(ctx)

	deadline := time.Now().Add(pruneQuiet + 3*pruneTick)
	for i := 0; time.Now().Before(deadline); i++ {
		os.Lstat(filepath.Join(busy.Target, fmt.Sprint("absent", i))) // a new name: a lookup
		time.Sleep(pruneQuiet / 20)
	}
	if k := known(quietRoot); len(k) != 0 {
		t.Errorf("the quiet mount holds nodes %v after %v quiet, want none", k, pruneQuiet+3*pruneTick)
	}
	if n := len(known(busyRoot)); n < 110 {
		t.Errorf("the busy mount holds %d nodes, want its 110 and more", n)
	}
	waitFor(t, func() bool { return len(known(busyRoot)) == 0 }, "prune of the busy mount once quiet")
}

// known lists the paths of the nodes the server holds below root, sorted.
func known(root *fs.Inode) []string {
	var paths []string
	var walk func(n *fs.Inode, dir string)
	walk = func(n *fs.Inode, dir string) {
		for name, c := range n.Children() {
			p := path.Join(dir, name)
			paths = append(paths, p)
			walk(c, p)
		}
	}
	walk(root, "")
	slices.Sort(paths)
	return paths
}
