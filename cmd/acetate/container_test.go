package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/acetate/acetate/internal/testtree"
	"github.com/acetate/acetate/internal/treecmp"
)

// Container commands: exit 3 for an unknown container, 2 for a bad name or
// driver, 1 for a refused operation; diff as JSON.
func TestContainerCommands(t *testing.T) {
	testtree.RequireRoot(t)
	root := t.TempDir()
	ok(t, run(t, root, nil, "template", "publish", "small", "--from", smallTree(t)))
	ok(t, run(t, root, nil, "create", "c1", "--from", "small"))
	for _, args := range [][]string{{"diff", "nosuch"}, {"mount", "nosuch"}, {"unmount", "nosuch"},
		{"rm", "nosuch"}, {"commit", "nosuch", "x"}, {"reset", "nosuch"}, {"rebase", "nosuch", "small"},
		{"clone", "nosuch", "c9"}, {"create", "c9", "--from", "nosuch"}, {"rebase", "c1", "nosuch"}} {
		if r := run(t, root, nil, args...); r.code != exitNotFound || !strings.Contains(r.stderr, "not found") {
			t.Errorf("%v: exit %d, %q; want 3 and \"not found\"", args, r.code, r.stderr)
		}
	}
	for _, args := range [][]string{{"create", "Bad/Name", "--from", "small"}, {"create", "c2"},
		{"mount", "c1", "--driver", "nope"}, {"commit", "c1", "Bad:Ref"}, {"clone", "c1", "a:b"}} {
		if r := run(t, root, nil, args...); r.code != exitUsage {
			t.Errorf("%v: exit %d (%s), want 2", args, r.code, r.stderr)
		}
	}
	if r := run(t, root, nil, "create", "c1", "--from", "small"); r.code != exitFailure || !strings.Contains(r.stderr, "exists") {
		t.Errorf("duplicate create: exit %d, %q", r.code, r.stderr)
	}
	mnt := strings.TrimSpace(ok(t, run(t, root, nil, "mount", "c1")).stdout)
	t.Cleanup(func() { run(t, root, nil, "rm", "--force", "c1") })
	if err := os.WriteFile(filepath.Join(mnt, "added"), []byte("12345"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := run(t, root, nil, "rm", "c1"); r.code != exitFailure || !strings.Contains(r.stderr, "mounted") {
		t.Errorf("rm of a mounted container: exit %d, %q", r.code, r.stderr)
	}
	var changes []struct {
		Kind, Path string
		Size       int64
	}
	if err := json.Unmarshal([]byte(ok(t, run(t, root, nil, "diff", "c1", "--format", "json")).stdout), &changes); err != nil {
		t.Fatal(err)
	}
	if len(changes) != 2 || changes[1].Kind != "A" || changes[1].Path != "/added" || changes[1].Size != 5 {
		t.Errorf("diff --format json: %+v", changes)
	}
	if out := ok(t, run(t, root, nil, "diff", "c1")).stdout; !strings.Contains(out, "A /added") {
		t.Errorf("diff: %q", out)
	}
	if out := ok(t, run(t, root, nil, "ls")).stdout; !strings.Contains(out, "c1") || !strings.Contains(out, "(overlay)") {
		t.Errorf("ls: %q", out)
	}
}

// kill -9 at random points during commit leaves the container and the
// store as before: fsck clean, the same diff, no template or a whole one.
func TestKillDuringCommit(t *testing.T) {
	testtree.RequireRoot(t)
	rootfs := testtree.DebianRootfs(t)
	root := t.TempDir()
	ok(t, run(t, root, nil, "template", "publish", "small", "--from", smallTree(t)))
	ok(t, run(t, root, nil, "create", "c", "--from", "small"))
	mnt := strings.TrimSpace(ok(t, run(t, root, nil, "mount", "c")).stdout)
	if out, err := exec.Command("cp", "-a", rootfs, filepath.Join(mnt, "big")).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	ok(t, run(t, root, nil, "unmount", "c"))
	before := ok(t, run(t, root, nil, "diff", "c")).stdout
	killRepeatedly(t, root, 8, []string{"commit", "c", "crash:1"}, func(i int) {
		if after := ok(t, run(t, root, nil, "diff", "c")).stdout; after != before {
			t.Fatalf("after kill %d the container's diff changed", i)
		}
		// Drop a commit that finished, so that the next one has work to do.
		run(t, root, nil, "template", "rm", "crash:1")
		ok(t, run(t, root, nil, "gc"))
	})
	ok(t, run(t, root, nil, "commit", "c", "crash:1"))
	ok(t, run(t, root, nil, "create", "c2", "--from", "crash:1"))
	mnt2 := strings.TrimSpace(ok(t, run(t, root, nil, "mount", "c2")).stdout)
	t.Cleanup(func() { run(t, root, nil, "unmount", "c2") })
	if err := treecmp.Compare(rootfs, filepath.Join(mnt2, "big"), treecmp.Options{}); err != nil {
		t.Fatal(err)
	}
}

// A fuse server killed with SIGKILL leaves a dead mount: unmount cleans it
// up, and mount recovers from it, under either driver.
func TestKilledFuseServer(t *testing.T) {
	testtree.RequireRoot(t)
	root := t.TempDir()
	ok(t, run(t, root, nil, "template", "publish", "small", "--from", smallTree(t)))
	ok(t, run(t, root, nil, "create", "c", "--from", "small"))
	t.Cleanup(func() { run(t, root, nil, "rm", "--force", "c") })
	for _, next := range [][]string{{"unmount", "c"}, {"mount", "c"}, {"mount", "c", "--driver", "fuse"}} {
		mnt := strings.TrimSpace(ok(t, run(t, root, nil, "mount", "c", "--driver", "fuse")).stdout)
		if err := os.WriteFile(filepath.Join(mnt, "kept"), []byte("yes"), 0o644); err != nil {
			t.Fatal(err)
		}
		killServers(t)
		if _, err := os.Stat(filepath.Join(mnt, "kept")); err == nil {
			t.Fatal("the mount still answers after its server was killed")
		}
		ok(t, run(t, root, nil, next...))
		if next[0] == "mount" {
			if b, err := os.ReadFile(filepath.Join(mnt, "kept")); err != nil || string(b) != "yes" {
				t.Errorf("after %v: kept = %q, %v", next, b, err)
			}
			ok(t, run(t, root, nil, "unmount", "c"))
		}
		if out := ok(t, run(t, root, nil, "ls")).stdout; strings.Contains(out, "(fuse)") || strings.Contains(out, "(overlay)") {
			t.Errorf("after %v and unmount, ls shows a mount:\n%s", next, out)
		}
	}
}

// killServers kills every process running the test binary, which are the
// fuse servers the mount commands left behind.
func killServers(t *testing.T) {
	t.Helper()
	isBinary := func(pid int) bool {
		target, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		return err == nil && target == binary
	}
	if killProcesses(t, isBinary) == 0 {
		t.Fatal("no fuse server found")
	}
}

// killProcesses kills with SIGKILL every process for which match holds,
// waits for each to end, and returns how many it killed.
func killProcesses(t *testing.T, match func(pid int) bool) int {
	t.Helper()
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	killed := 0
	for _, dir := range dirs {
		pid, err := strconv.Atoi(filepath.Base(dir))
		if err != nil || !match(pid) {
			continue
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill %d: %v", pid, err)
		}
		for syscall.Kill(pid, 0) == nil {
			time.Sleep(10 * time.Millisecond)
		}
		killed++
	}
	return killed
}

// rm refuses a running container; rm --force stops and removes it.
func TestRmRunning(t *testing.T) {
	root := debianStore(t)
	ok(t, run(t, root, nil, "start", "box", "--from", "debian", "--", "sleep", "600"))
	if r := run(t, root, nil, "rm", "box"); r.code != exitFailure || !strings.Contains(r.stderr, "running") {
		t.Fatalf("rm of a running container: exit %d, %q", r.code, r.stderr)
	}
	if ps(t, root)["box"].State != "running" {
		t.Fatalf("the refused rm stopped the container")
	}
	ok(t, run(t, root, nil, "rm", "--force", "box"))
	if _, listed := ps(t, root)["box"]; listed {
		t.Errorf("box still listed after rm --force")
	}
}
