package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// unmount, reset, rebase and commit refuse a running container with an
// error that says so (issue 13, item 4: unmount used to succeed, and
// rebase and reset then worked on the live upper directory).
func TestRunningContainerRefused(t *testing.T) {
	root := debianStore(t)
	ok(t, run(t, root, nil, "start", "box", "--from", "debian", "--", "sleep", "600"))
	t.Cleanup(func() { run(t, root, nil, "rm", "--force", "box") })
	for _, args := range [][]string{{"unmount", "box"}, {"reset", "box"}, {"rebase", "box", "debian"}, {"commit", "box", "snap"}} {
		r := run(t, root, nil, args...)
		if r.code == 0 || !strings.Contains(r.stderr, "container box is running; stop it first") {
			t.Errorf("%v of a running container: exit %d, %q", args, r.code, r.stderr)
		}
	}
	if e := ps(t, root)["box"]; e.State != "running" {
		t.Errorf("box is %q after the refusals", e.State)
	}
	if r := run(t, root, nil, "template", "ls"); strings.Contains(r.stdout, "snap") {
		t.Errorf("a refused commit made a template:\n%s", r.stdout)
	}
}

// rm --force during a foreground run stops the run and removes the
// container, every time (issue 13, item 9: it failed 4 times in 5, racing
// the run's own unmount, and left the container).
func TestRmForceDuringForegroundRun(t *testing.T) {
	root := debianStore(t)
	for i := range 5 {
		name := fmt.Sprintf("fg%d", i)
		ok(t, run(t, root, nil, "create", name, "--from", "debian"))
		fg := exec.Command(binary, "--root", root, "run", name, "--", "sleep", "600")
		var stderr bytes.Buffer
		fg.Stderr = &stderr
		if err := fg.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if fg.ProcessState == nil {
				fg.Process.Signal(syscall.SIGTERM)
				fg.Wait()
			}
		})
		waitState(t, root, name, "running")
		if r := run(t, root, nil, "rm", "--force", name); r.code != 0 {
			t.Errorf("round %d: rm --force: exit %d, %q", i, r.code, r.stderr)
		}
		// sleep, the container's PID 1, has no handler for the stop
		// signal: it is killed.
		err := fg.Wait()
		if ee, isExit := err.(*exec.ExitError); !isExit || ee.ExitCode() != 128+int(syscall.SIGKILL) {
			t.Errorf("round %d: the run ended with %v, %q; want exit 137", i, err, stderr.String())
		}
		if _, listed := ps(t, root)[name]; listed {
			t.Errorf("round %d: %s still listed after rm --force", i, name)
		}
	}
}

// waitState waits up to 10 s for container name to reach state.
func waitState(t *testing.T, root, name, state string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if ps(t, root)[name].State == state {
			return
		}
	}
	t.Fatalf("%s never became %s", name, state)
}

// diff prints a name holding a newline (or any byte %q escapes) quoted
// and escaped, so that a container cannot make one entry read as two
// (issue 13, item 9); JSON keeps the name as it is.
func TestDiffQuotesNames(t *testing.T) {
	src := smallTree(t)
	root := t.TempDir()
	ok(t, run(t, root, nil, "template", "publish", "small", "--from", src))
	ok(t, run(t, root, nil, "create", "c", "--from", "small"))
	forged := "x\nD /etc/passwd" // reads as A /x, then D /etc/passwd
	upper := filepath.Join(root, "containers", "c", "upper")
	if err := os.MkdirAll(filepath.Join(upper, "x\nD ", "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{forged, "plain name", "tab\there"} {
		if err := os.WriteFile(filepath.Join(upper, name), []byte("1"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := ok(t, run(t, root, nil, "diff", "c")).stdout
	want := []string{`A "/tab\there"` + "\t1B", `A "/x\nD /etc/passwd"` + "\t1B", "A /plain name\t1B"}
	for _, w := range want {
		if !strings.Contains(out, w+"\n") {
			t.Errorf("diff lacks line %q:\n%s", w, out)
		}
	}
	var changes []struct{ Path string }
	if err := json.Unmarshal([]byte(ok(t, run(t, root, nil, "diff", "c", "--format", "json")).stdout), &changes); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range changes {
		found = found || c.Path == "/"+forged
	}
	if !found {
		t.Errorf("json lacks the name as it is: %+v", changes)
	}
	if lines := strings.Count(out, "\n"); lines != len(changes) {
		t.Errorf("diff printed %d lines for %d entries:\n%s", lines, len(changes), out)
	}
}

// A running container whose FUSE server died is not shown as running, and
// exec says the mount is gone (it said "executable file not found"); a
// stopped container with a dead mount is mounted again by run.
func TestDeadFuseMount(t *testing.T) {
	root := debianStore(t)
	ok(t, run(t, root, nil, "start", "box", "--from", "debian", "--driver", "fuse", "--", "sleep", "600"))
	t.Cleanup(func() { run(t, root, nil, "rm", "--force", "box") })
	// Let sleep fault in its pages from the mount first: once the server
	// is gone, a page fault on the mount kills the process (SIGBUS).
	time.Sleep(time.Second)
	killFuseServer(t, root)
	if e := ps(t, root)["box"]; e.State != "broken" {
		t.Errorf("box with a dead mount is %q, want broken", e.State)
	}
	if out := ok(t, run(t, root, nil, "ps")).stdout; strings.Contains(out, "running") {
		t.Errorf("ps shows a dead container as running:\n%s", out)
	}
	r := run(t, root, nil, "exec", "box", "--", "true")
	if r.code == 0 || !strings.Contains(r.stderr, "mount is gone") {
		t.Errorf("exec into a dead mount: exit %d, %q", r.code, r.stderr)
	}
	ok(t, run(t, root, nil, "stop", "box"))
	ok(t, run(t, root, nil, "mount", "box", "--driver", "fuse"))
	killFuseServer(t, root)
	if r := ok(t, run(t, root, nil, "run", "box", "--", "cat", "/etc/debian_version")); r.stdout == "" {
		t.Error("run after the mount died printed nothing")
	}
}

// killFuseServer kills the FUSE server serving a mount of the store at
// root, found by the configuration in its environment.
func killFuseServer(t *testing.T, root string) {
	t.Helper()
	serves := func(pid int) bool {
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		return err == nil && bytes.Contains(env, []byte("ACETATE_FUSE_SERVE=")) && bytes.Contains(env, []byte(root))
	}
	if killProcesses(t, serves) == 0 {
		t.Fatal("no fuse server found")
	}
}
