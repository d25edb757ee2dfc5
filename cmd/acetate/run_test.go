package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acetate/acetate/internal/testtree"
)

// debianStore returns a store root holding the Debian template "debian".
func debianStore(t *testing.T) string {
	t.Helper()
	testtree.RequireRoot(t)
	rootfs := testtree.DebianRootfs(t)
	root := t.TempDir()
	ok(t, run(t, root, nil, "template", "publish", "debian", "--from", rootfs))
	t.Cleanup(func() {
		// Nothing may stay running or mounted after a test.
		r := run(t, root, nil, "ps", "--format", "json")
		if strings.Contains(r.stdout, `"running"`) {
			t.Errorf("containers still running: %s", r.stdout)
		}
		if m, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(m), root) {
			t.Errorf("mounts left under %s", root)
		}
	})
	return root
}

type psEntry struct {
	Name, State string
	Pid         int
	ExitCode    *int
}

func ps(t *testing.T, root string) map[string]psEntry {
	t.Helper()
	var list []psEntry
	r := ok(t, run(t, root, nil, "ps", "-a", "--format", "json"))
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
		t.Fatalf("ps json: %v: %q", err, r.stdout)
	}
	out := map[string]psEntry{}
	for _, e := range list {
		out[e.Name] = e
	}
	return out
}

// run: exit codes are the command's; acetate's own failures are 125 or a
// usage/not-found code, with a message on stderr.
func TestRunExitCodes(t *testing.T) {
	root := debianStore(t)
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"run", "--from", "debian", "box", "--", "sh", "-c", "exit 3"}, 3, ""},
		// The command is PID 1: the kernel drops a signal it does not
		// handle, as in a docker container; under --init it dies of it.
		{[]string{"run", "box", "--", "sh", "-c", "kill -TERM $$; exit 4"}, 4, ""},
		{[]string{"run", "box", "--init", "--", "sh", "-c", "kill -TERM $$"}, 143, ""},
		{[]string{"run", "box", "--", "no-such-command"}, 127, "no-such-command"},
		{[]string{"run", "box", "--memory", "12parsecs", "--", "true"}, 2, "--memory"},
		{[]string{"run", "box", "--cpus", "-1", "--", "true"}, 2, "--cpus"},
		{[]string{"run", "box", "--net", "wifi", "--", "true"}, 2, "--net"},
		{[]string{"run", "no-such-box", "--", "true"}, 3, "no-such-box"},
		{[]string{"run", "--from", "no-such-template", "other", "--", "true"}, 3, "no-such-template"},
		{[]string{"exec", "box", "--", "true"}, 125, "not running"},
	}
	for _, c := range cases {
		r := run(t, root, nil, c.args...)
		if r.code != c.code || !strings.Contains(r.stderr, c.want) {
			t.Errorf("acetate %v: exit %d, stderr %q; want %d and %q", c.args, r.code, r.stderr, c.code, c.want)
		}
	}
	r := ok(t, run(t, root, []byte("from stdin\n"), "run", "box", "-i", "--hostname", "h1", "--env", "X=42", "--", "sh", "-c", "read l; echo $l $(hostname) $X"))
	if r.stdout != "from stdin h1 42\n" {
		t.Errorf("run output %q", r.stdout)
	}
}

// start, ps, exec, logs, stop: a detached container's whole life.
func TestStartExecLogsStop(t *testing.T) {
	root := debianStore(t)
	ok(t, run(t, root, nil, "create", "svc", "--from", "debian"))
	if got := ps(t, root)["svc"].State; got != "created" {
		t.Fatalf("state after create: %q", got)
	}
	// A command that ignores SIGTERM, so stop must escalate: under
	// acetate's init, which takes SIGTERM and passes it on (a PID 1 that
	// ignores it is killed at once, as waiting would be for nothing).
	ok(t, run(t, root, nil, "start", "svc", "--init", "--", "sh", "-c", "trap '' TERM; echo started; while :; do sleep 1; done"))
	if r := run(t, root, nil, "start", "svc", "--", "true"); r.code == 0 || !strings.Contains(r.stderr, "already running") {
		t.Fatalf("second start: exit %d %q", r.code, r.stderr)
	}
	st := ps(t, root)["svc"]
	if st.State != "running" || st.Pid <= 0 {
		t.Fatalf("ps: %+v", st)
	}
	t.Cleanup(func() { run(t, root, nil, "stop", "--time", "0", "svc") })
	r := ok(t, run(t, root, nil, "exec", "svc", "--", "sh", "-c", "hostname; cat /proc/1/cmdline; echo; cat /proc/[0-9]*/cmdline"))
	if !strings.HasPrefix(r.stdout, "svc\nacetate-init") || !strings.Contains(r.stdout, "trap") {
		t.Fatalf("exec should see the container's hostname, its init as PID 1 and its command: %q", r.stdout)
	}
	if r := run(t, root, nil, "exec", "svc", "--", "sh", "-c", "exit 7"); r.code != 7 {
		t.Fatalf("exec exit code %d", r.code)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(run(t, root, nil, "logs", "svc").stdout, "started") {
		if time.Now().After(deadline) {
			t.Fatal("log never showed the output")
		}
		time.Sleep(100 * time.Millisecond)
	}
	t0 := time.Now()
	ok(t, run(t, root, nil, "stop", "--time", "1", "svc"))
	if d := time.Since(t0); d < time.Second {
		t.Fatalf("stop returned after %v: it did not wait for SIGTERM to be ignored", d)
	}
	st = ps(t, root)["svc"]
	if st.State != "exited" || st.ExitCode == nil || *st.ExitCode != 137 {
		t.Fatalf("after stop: %+v", st)
	}
}

// 50 containers from one template start at once, and all stop cleanly:
// nothing left running, mounted, or in a cgroup.
func TestFiftyContainers(t *testing.T) {
	root := debianStore(t)
	const n = 50
	parallel := func(f func(i int) result) {
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if r := f(i); r.code != 0 {
					t.Errorf("container %d: exit %d: %s", i, r.code, r.stderr)
				}
			}()
		}
		wg.Wait()
	}
	parallel(func(i int) result {
		return run(t, root, nil, "start", "--from", "debian", fmt.Sprintf("c%d", i), "--", "sleep", "1000")
	})
	running := 0
	for _, e := range ps(t, root) {
		if e.State == "running" {
			running++
		}
	}
	if running != n {
		t.Fatalf("%d of %d containers running", running, n)
	}
	parallel(func(i int) result { return run(t, root, nil, "stop", "--time", "5", fmt.Sprintf("c%d", i)) })
	for name, e := range ps(t, root) {
		if e.State != "exited" {
			t.Errorf("%s: %s after stop", name, e.State)
		}
	}
	for _, h := range []string{"pids", "memory", "cpu", "devices", "unified", ""} {
		left, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", h, "acetate", "*", "c[0-9]*"))
		if len(left) > 0 {
			t.Errorf("cgroups left: %v", left)
		}
	}
}
