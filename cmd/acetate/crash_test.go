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
	// --replace: a run that finished leaves debian:crash, and the next
	// must do the work again, not be refused.
	killRepeatedly(t, root, 12, []string{"template", "publish", "debian:crash", "--from", src, "--replace"}, func(i int) {
		if i%4 == 3 {
			ok(t, run(t, root, nil, "gc"))
			// Start from an empty store again so later kills hit the
			// object-writing phase, not only the dedup phase.
			run(t, root, nil, "template", "rm", "debian:crash")
			ok(t, run(t, root, nil, "gc"))
		}
	})
	ok(t, run(t, root, nil, "gc"))
	if tmp, _ := os.ReadDir(filepath.Join(root, "tmp")); len(tmp) != 0 {
		t.Fatalf("gc left %d files in tmp/", len(tmp))
	}
	ok(t, run(t, root, nil, "template", "publish", "debian:crash", "--from", src, "--replace"))
	out := filepath.Join(t.TempDir(), "out")
	ok(t, run(t, root, nil, "template", "export", "debian:crash", "--to", out))
	if err := treecmp.Compare(src, out, treecmp.Options{}); err != nil {
		t.Fatal(err)
	}
}

// killRepeatedly runs acetate args n times, each killed with SIGKILL after a
// random delay; after each kill the store must be fsck-clean, then check
// runs. It fails when no run was interrupted: then nothing was tested.
func killRepeatedly(t *testing.T, root string, n int, args []string, check func(i int)) {
	t.Helper()
	killWithin(t, root, n, 1500*time.Millisecond, args, check)
}

// killWithin is killRepeatedly with kills at most maxDelay after the start.
func killWithin(t *testing.T, root string, n int, maxDelay time.Duration, args []string, check func(i int)) {
	t.Helper()
	killed := 0
	for i := range n {
		cmd := exec.Command(binary, append([]string{"--root", root}, args...)...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(rand.N(maxDelay))
		cmd.Process.Signal(syscall.SIGKILL)
		if err := cmd.Wait(); err != nil {
			killed++
		}
		if r := run(t, root, nil, "fsck"); r.code != 0 {
			t.Fatalf("after kill %d: fsck exit %d\n%s%s", i, r.code, r.stdout, r.stderr)
		}
		check(i)
	}
	t.Logf("%d of %d runs of %v were killed before they finished", killed, n, args)
	if killed == 0 {
		t.Fatalf("no run of %v was interrupted: the test did not test anything", args)
	}
}
