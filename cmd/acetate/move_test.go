package main

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acetate/acetate/internal/testtree"
	"github.com/acetate/acetate/internal/treecmp"
	"github.com/acetate/acetate/templates/registry/registrytest"
)

// Moves between two stores through a real registry (docker-registry on
// 127.0.0.1), of containers of the systemd template, which the target has:
// a booted one with a service, and one running a command (with push and
// pull of a container, and kill -9 during push and move). One registry
// and one target store: the template's image is pushed once.
func TestMove(t *testing.T) {
	root := machineRoot(t, "systemd")
	reg := registrytest.Start(t)
	root2 := t.TempDir()
	ok(t, run(t, root2, nil, "template", "publish", "systemd", "--from", testtree.SystemdRootfs(t)))
	t.Run("booted", func(t *testing.T) { testMoveBooted(t, root, root2, reg+"/moves/c") })
	t.Run("command", func(t *testing.T) { testMoveCommand(t, root, root2, reg+"/moves/c") })
}

// A running container that changed 5 MB on its template moves: it runs
// there, from the state it was frozen in (its differences exact but for
// the loop's file, which goes on growing there); the target receives at
// most 6 MB; push --container and pull --container make a copy.
func testMoveCommand(t *testing.T, root, root2, repo string) {
	name := "mt-move-cmd"
	machine(t, root, name, append([]string{"--from", "systemd"}, counterLoop...)...)
	size := runCounter(t, root, name)
	t.Cleanup(func() {
		for _, n := range []string{name, "copy"} {
			if _, listed := ps(t, root2)[n]; listed {
				ok(t, run(t, root2, nil, "rm", "--force", n))
			}
		}
	})
	var st struct{ MountedAt string }
	if err := json.Unmarshal([]byte(ok(t, run(t, root, nil, "inspect", name, "--format", "json")).stdout), &st); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(st.MountedAt, "srv/data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	for i := range 5 {
		for j := range buf {
			buf[j] = byte(rand.Uint32())
		}
		if err := os.WriteFile(filepath.Join(data, "f"+string(rune('0'+i))), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	waitGrows(t, size)
	r := ok(t, run(t, root, nil, "move", name, "--via", repo+":1", "--insecure", "--to", root2, "--format", "json"))
	t.Cleanup(func() { run(t, root2, nil, "stop", "--time", "0", name) })
	var mr moveReport
	if err := json.Unmarshal([]byte(r.stdout), &mr); err != nil {
		t.Fatalf("move json: %v: %s", err, r.stdout)
	}
	t.Logf("move: sent %d bytes while running (the template image too when the registry lacked it), %d after the freeze; target received %d; downtime %v, total %v",
		mr.LiveBytes, mr.FinalBytes, mr.PulledBytes, mr.Downtime, mr.Total)
	if mr.PulledBytes > 6<<20 {
		t.Errorf("the target, which has the template, received %d bytes for a 5 MB change", mr.PulledBytes)
	}
	if mr.FinalBytes > 1<<20 {
		t.Errorf("the push after the freeze sent %d bytes: more than what changed since the first", mr.FinalBytes)
	}
	if got := ps(t, root)[name].State; got != "exited" {
		t.Errorf("source after move: %s", got)
	}
	if got := ps(t, root2)[name].State; got != "running" {
		t.Fatalf("target after move: %s", got)
	}
	var st2 struct{ MountedAt string }
	if err := json.Unmarshal([]byte(ok(t, run(t, root2, nil, "inspect", name, "--format", "json")).stdout), &st2); err != nil {
		t.Fatal(err)
	}
	moved := func() int64 {
		fi, err := os.Stat(filepath.Join(st2.MountedAt, "counter"))
		if err != nil {
			return 0
		}
		return fi.Size()
	}
	if moved() == 0 {
		t.Error("the moved container lost its counter")
	}
	waitGrows(t, moved)
	ok(t, run(t, root2, nil, "stop", "--time", "0", name))
	upper := func(root, name string) string { return filepath.Join(root, "containers", name, "upper") }
	if err := treecmp.Compare(upper(root, name), upper(root2, name), treecmp.Options{Skip: []string{"/counter"}}); err != nil {
		t.Errorf("moved container's differences: %v", err)
	}

	// push and pull of a stopped container, under another name.
	ok(t, run(t, root, nil, "push", name, repo+":2", "--insecure"))
	r = ok(t, run(t, root2, nil, "pull", repo+":2", "--container", "copy", "--insecure"))
	if !strings.Contains(r.stdout, "pulled container copy") {
		t.Errorf("pull --container: %q", r.stdout)
	}
	if err := treecmp.Compare(upper(root, name), upper(root2, "copy"), treecmp.Options{}); err != nil {
		t.Errorf("pulled container: %v", err)
	}
	if r := run(t, root2, nil, "pull", repo+":2", "--container", "copy", "--insecure"); r.code == 0 {
		t.Error("pull --container over an existing container")
	}
	if r := run(t, root, nil, "move", name, "--via", repo+":1", "--insecure", "--to", root); r.code != exitUsage {
		t.Errorf("move --to its own store: exit %d %q", r.code, r.stderr)
	}

	// kill -9 during push and during move (of the stopped container, so
	// nothing is left frozen): both stores stay fsck-clean, the source as
	// it was, the target without the container or with all of it.
	push := []string{"push", name, repo + ":3", "--insecure"}
	start := time.Now()
	ok(t, run(t, root, nil, push...))
	killWithin(t, root, 3, time.Since(start), push, func(i int) {
		if err := treecmp.Compare(upper(root, name), upper(root2, "copy"), treecmp.Options{}); err != nil {
			t.Fatalf("after kill %d of push: the container changed: %v", i, err)
		}
	})
	ok(t, run(t, root2, nil, "rm", name))
	move := []string{"move", name, "--via", repo + ":4", "--insecure", "--to", root2}
	start = time.Now()
	ok(t, run(t, root, nil, move...))
	took := time.Since(start)
	ok(t, run(t, root2, nil, "rm", name))
	killWithin(t, root, 3, took, move, func(i int) {
		if r := run(t, root2, nil, "fsck"); r.code != 0 {
			t.Fatalf("after kill %d of move: target fsck exit %d\n%s", i, r.code, r.stdout)
		}
		if _, moved := ps(t, root2)[name]; moved {
			if err := treecmp.Compare(upper(root, name), upper(root2, name), treecmp.Options{}); err != nil {
				t.Fatalf("after kill %d of move: a half-moved container: %v", i, err)
			}
			ok(t, run(t, root2, nil, "rm", name))
		}
	})

	// kill -9 of a move of a running container, which freezes it for
	// its last push: the source is never left frozen (its freezer is
	// gone, the next look at it thaws it) nor half-moved.
	ok(t, run(t, root, nil, "start", name))
	killWithin(t, root, 3, took, move, func(i int) {
		switch st := ps(t, root)[name].State; st {
		case "paused":
			t.Fatalf("after kill %d of move: the source is left frozen", i)
		case "exited": // the move finished: the source was stopped
			ok(t, run(t, root, nil, "start", name))
		}
		if r := run(t, root2, nil, "fsck"); r.code != 0 {
			t.Fatalf("after kill %d of move: target fsck exit %d\n%s", i, r.code, r.stdout)
		}
		if _, moved := ps(t, root2)[name]; moved {
			ok(t, run(t, root2, nil, "rm", "--force", name))
		}
	})
	ok(t, run(t, root, nil, "stop", "--time", "0", name))
}

// A booted systemd container with a service, that changed 5 MB, moves: it
// boots there from the moved state and its service answers; the target
// received at most 6 MB.
func testMoveBooted(t *testing.T, root, root2, repo string) {
	name := "mt-move"
	machine(t, root, name, "--from", "systemd")
	ok(t, run(t, root, nil, "start", name))
	checkBooted(t, root, name, "systemd")
	ok(t, run(t, root, nil, "exec", name, "--", "sh", "-c", "mkdir -p /srv/data && head -c 5242880 /dev/urandom > /srv/data/blob && echo moved > /srv/data/mark"))
	r := ok(t, run(t, root, nil, "move", name, "--via", repo+":booted", "--insecure", "--to", root2, "--format", "json"))
	t.Cleanup(func() {
		run(t, root2, nil, "rm", "--force", name)
		noLeftovers(t, root2, name, "")
	})
	var mr moveReport
	if err := json.Unmarshal([]byte(r.stdout), &mr); err != nil {
		t.Fatalf("move json: %v: %s", err, r.stdout)
	}
	t.Logf("booted move: sent %d bytes while running, %d after the freeze; target received %d; downtime %v (to the start, not to the end of the boot), total %v",
		mr.LiveBytes, mr.FinalBytes, mr.PulledBytes, mr.Downtime, mr.Total)
	if mr.PulledBytes > 6<<20 {
		t.Errorf("the target, which has the template, received %d bytes for a 5 MB change", mr.PulledBytes)
	}
	if st := ps(t, root)[name].State; st != "exited" {
		t.Errorf("source after move: %s", st)
	}
	checkBooted(t, root2, name, "systemd")
	if r := ok(t, run(t, root2, nil, "exec", name, "--", "cat", "/srv/data/mark")); r.stdout != "moved\n" {
		t.Errorf("the moved container's change: %q", r.stdout)
	}
	ok(t, run(t, root2, nil, "stop", name))
}
