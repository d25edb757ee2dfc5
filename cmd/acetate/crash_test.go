package main

import (
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/acetate/acetate/internal/testtree"
	"github.com/acetate/acetate/internal/treecmp"
)

// kill -9 at random points during publish leaves the store fsck-clean with
// no ref to anything missing; GC then removes the leftovers and a new
// publish gives the right tree.
func TestKillDuringPublish(t *testing.T) {
	testtree.RequireRoot(t)
	src := testtree.DebianRootfs(t)
	root := t.TempDir()
	killed := 0
	for i := range 12 {
		cmd := exec.Command(binary, "--root", root, "template", "publish", "debian:crash", "--from", src)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rand.IntN(1500)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		if err := cmd.Wait(); err != nil {
			killed++
		}
		if r := run(t, root, nil, "fsck"); r.code != 0 {
			t.Fatalf("after kill %d: fsck exit %d\n%s%s", i, r.code, r.stdout, r.stderr)
		}
		if i%4 == 3 {
			ok(t, run(t, root, nil, "gc"))
			// Start from an empty store again so later kills hit the
			// object-writing phase, not only the dedup phase.
			run(t, root, nil, "template", "rm", "debian:crash")
			ok(t, run(t, root, nil, "gc"))
		}
	}
	t.Logf("%d of 12 publishes were killed before they finished", killed)
	if killed == 0 {
		t.Fatal("no publish was interrupted: the test did not test anything")
	}
	ok(t, run(t, root, nil, "gc"))
	if tmp, _ := os.ReadDir(filepath.Join(root, "tmp")); len(tmp) != 0 {
		t.Fatalf("gc left %d files in tmp/", len(tmp))
	}
	ok(t, run(t, root, nil, "template", "publish", "debian:crash", "--from", src))
	out := filepath.Join(t.TempDir(), "out")
	ok(t, run(t, root, nil, "template", "export", "debian:crash", "--to", out))
	if err := treecmp.Compare(src, out, treecmp.Options{}); err != nil {
		t.Fatal(err)
	}
}
