package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/acetate/acetate/internal/testtree"
	"golang.org/x/sys/unix"
)

// machineStore is the store the machine tests share: each booting tree is
// published in it once per test binary, as the template of the tree's name
// (systemd, sysvinit). Each test names its containers mt-..., its own, and
// removes them; TestMain removes the store (removeMachineStore).
var machineStore struct {
	sync.Mutex
	root      string
	published map[string]bool
}

// bootingTrees are the cached booting trees, by template name.
var bootingTrees = map[string]func(testing.TB) string{
	"systemd":  testtree.SystemdRootfs,
	"sysvinit": testtree.SysvinitRootfs,
}

// machineRoot returns the shared store with the templates of the booting
// trees named, or skips the test when a tree is missing.
func machineRoot(t *testing.T, trees ...string) string {
	t.Helper()
	testtree.RequireRoot(t)
	ms := &machineStore
	ms.Lock()
	defer ms.Unlock()
	if ms.root == "" {
		dir, err := os.MkdirTemp("", "acetate-machines-")
		if err != nil {
			t.Fatal(err)
		}
		ms.root, ms.published = dir, map[string]bool{}
	}
	for _, tree := range trees {
		if !ms.published[tree] {
			ok(t, run(t, ms.root, nil, "template", "publish", tree, "--from", bootingTrees[tree](t)))
			ms.published[tree] = true
		}
	}
	return ms.root
}

// removeMachineStore removes the shared store, unless a test left a mount
// in it (removing would then reach into the mount).
func removeMachineStore() {
	root := machineStore.root
	if root == "" {
		return
	}
	if len(storeMounts(root)) > 0 {
		fmt.Fprintf(os.Stderr, "machine tests left mounts under %s: not removed\n", root)
		return
	}
	os.RemoveAll(root)
}

// machine creates container name in the shared store root with the
// create arguments args, and at the end of the test removes it (rm
// --force) and checks that nothing of it is left on the host.
func machine(t *testing.T, root, name string, args ...string) {
	t.Helper()
	ok(t, run(t, root, nil, append([]string{"create", name}, args...)...))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log of %s:\n%s", name, tail(run(t, root, nil, "logs", name).stdout, 3000))
		}
		if _, listed := ps(t, root)[name]; listed {
			ok(t, run(t, root, nil, "rm", "--force", name))
		}
		noLeftovers(t, root, name, "")
	})
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// pidNS returns the pid namespace of process pid ("pid:[INODE]").
func pidNS(t *testing.T, pid int) string {
	t.Helper()
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
	if err != nil {
		t.Fatalf("pid namespace of %d: %v", pid, err)
	}
	return ns
}

// hostPids returns every process of the host.
func hostPids() []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// acetateProc reports whether process pid runs this test binary's acetate
// with a file open under dir: the supervisor (its log) or a FUSE
// server (the upper directory) of the container whose directory dir is.
// Processes of other tests and engineers run other binaries.
func acetateProc(pid int, dir string) bool {
	if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err != nil || exe != binary {
		return false
	}
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, fd := range fds {
		if p, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); err == nil && strings.HasPrefix(p, dir+"/") {
			return true
		}
	}
	return false
}

// containerProcs returns the processes of the pid namespace ns that are the
// container's own: not this test binary's acetate (its init helper).
func containerProcs(ns string) []int {
	var out []int
	for _, pid := range hostPids() {
		if n, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid)); err != nil || n != ns {
			continue
		}
		if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); exe != binary {
			out = append(out, pid)
		}
	}
	return out
}

// storeMounts returns the mount points under root, deepest first.
func storeMounts(root string) []string {
	data, _ := os.ReadFile("/proc/self/mountinfo")
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], root+"/") {
			out = append(out, f[4])
		}
	}
	slices.Reverse(out)
	return out
}

// containerCgroups returns the cgroup directories of container name (of
// any store: acetate/STORE/NAME), in every hierarchy (v1 controllers, the
// hybrid's unified, a v2 root).
func containerCgroups(name string) []string {
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*/acetate/*/" + name)
	v2, _ := filepath.Glob("/sys/fs/cgroup/acetate/*/" + name)
	return append(dirs, v2...)
}

// leftovers lists what is left on the host of container name of store
// root: acetate processes of it (supervisor, FUSE server), processes in its
// pid namespace ns (when known), mounts, cgroup directories.
func leftovers(root, name, ns string) []string {
	dir := filepath.Join(root, "containers", name)
	var left []string
	for _, pid := range hostPids() {
		if acetateProc(pid, dir) {
			left = append(left, fmt.Sprintf("acetate process %d", pid))
		}
	}
	if ns != "" {
		for _, pid := range containerProcs(ns) {
			left = append(left, fmt.Sprintf("process %d of the container", pid))
		}
	}
	for _, m := range storeMounts(dir) {
		left = append(left, "mount "+m)
	}
	for _, d := range containerCgroups(name) {
		left = append(left, "cgroup "+d)
	}
	return left
}

// noLeftovers waits (at most 5 s: a supervisor or FUSE server exits just
// after stop returns) until nothing of container name is left on the host.
func noLeftovers(t *testing.T, root, name, ns string) {
	t.Helper()
	var left []string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if left = leftovers(root, name, ns); len(left) == 0 {
			return
		}
	}
	t.Errorf("%s left: %s", name, strings.Join(left, ", "))
}

// bootCheck is how a test tells that a booted tree is up.
type bootCheck struct {
	// ready is a shell test that passes once the init can be asked its
	// state (systemctl needs systemd's private bus, made early).
	ready string
	// state prints the state: want, once booted.
	state []string
	want  string
	// console is in the console's boot log; halted in the log after a
	// clean shutdown.
	console, halted []string
}

var bootChecks = map[string]bootCheck{
	"systemd": {
		ready: "test -S /run/systemd/private", state: []string{"systemctl", "is-system-running", "--wait"}, want: "running\n",
		console: []string{"Multi-User System"}, halted: []string{"shutdown.target", "Halting system."},
	},
	"sysvinit": {
		ready: "runlevel | grep -q ' 2$'", state: []string{"runlevel"}, want: "N 2\n",
		// Only lines of the rc scripts: init's own ("INIT: version 3.06
		// booting", "INIT: Switching to runlevel: 0") and the halt
		// script's last one ("Will now halt") are now and then lost,
		// on a pty console as under nspawn or LXC. At each runlevel
		// change sysvinit tcflush(TCIOFLUSH)es the console, which
		// drops what the kernel has not yet moved from the slave to
		// the master; halt(8) kills startpar, which holds a script's
		// output until the script ends. The exit code 0 shows that
		// halt(8) ran (see bootExit).
		console: []string{"Using makefile-style concurrent boot in runlevel 2"}, halted: []string{"Asking all remaining processes to terminate", "Unmounting local filesystems"},
	},
}

// waitReady waits (at most 30 s) until the booted container name passes
// tree's ready test.
func waitReady(t *testing.T, root, name, tree string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if run(t, root, nil, "exec", name, "--", "sh", "-c", bootChecks[tree].ready).code == 0 {
			return
		}
	}
	t.Fatalf("%s (%s) never came up", name, tree)
}

// checkBooted checks that the booted container name reached tree's state
// and that its service answers from inside; sysvinit reports runlevel 2
// while its rc scripts still run, so the service gets a few seconds.
func checkBooted(t *testing.T, root, name, tree string) {
	t.Helper()
	waitReady(t, root, name, tree)
	c := bootChecks[tree]
	if r := ok(t, run(t, root, nil, append([]string{"exec", name, "--"}, c.state...)...)); r.stdout != c.want {
		failed := run(t, root, nil, "exec", name, "--", "systemctl", "--failed", "--no-legend").stdout
		t.Errorf("%s: %v printed %q, want %q (failed units: %s)", name, c.state, r.stdout, c.want, failed)
	}
	var page result
	for try := 0; try < 40 && page.stdout != testtree.ServiceAnswer; try++ {
		time.Sleep(time.Duration(try) * 5 * time.Millisecond)
		page = run(t, root, nil, "exec", name, "--", "busybox", "wget", "-qO-", "http://127.0.0.1/")
	}
	if page.stdout != testtree.ServiceAnswer {
		t.Errorf("%s: the service answered %q (%s), want %q", name, page.stdout, page.stderr, testtree.ServiceAnswer)
	}
}

// keyAfter is a standard input that sends key after delay, then ends.
type keyAfter struct {
	delay time.Duration
	key   byte
	sent  bool
}

func (k *keyAfter) Read(p []byte) (int, error) {
	if k.sent {
		return 0, io.EOF
	}
	time.Sleep(k.delay)
	k.sent, p[0] = true, k.key
	return 1, nil
}

// On each driver and each booting tree: start boots the tree's own init to
// running (systemd) or runlevel 2 (sysvinit) with its service answering;
// console shows the boot log and detaches on Ctrl-]; stop shuts it down
// cleanly (exit 0, the halt in the log) well within its timeout, and
// leaves no process, mount, cgroup or FUSE server.
func TestBootMachines(t *testing.T) {
	for _, tree := range []string{"systemd", "sysvinit"} {
		for _, driver := range []string{"overlay", "fuse"} {
			t.Run(tree+"/"+driver, func(t *testing.T) {
				root := machineRoot(t, tree)
				name := "mt-boot-" + tree + "-" + driver
				machine(t, root, name, "--from", tree, "--driver", driver)
				begin := time.Now()
				ok(t, run(t, root, nil, "start", name))
				in := inspect(t, root, name)
				ns := pidNS(t, in.Pid)
				checkBooted(t, root, name, tree)
				t.Logf("booted in %v", time.Since(begin).Round(time.Millisecond))

				r := runFrom(t, nil, root, &keyAfter{delay: 300 * time.Millisecond, key: 0x1d}, "console", name)
				if r.code != 0 || !strings.Contains(r.stderr, "Detached from "+name) {
					t.Errorf("console with Ctrl-] typed: exit %d, stderr %q", r.code, r.stderr)
				}
				for _, want := range bootChecks[tree].console {
					if !strings.Contains(r.stdout, want) {
						t.Errorf("console does not show %q:\n%s", want, tail(r.stdout, 2000))
					}
				}
				if st := inspect(t, root, name); st.State != "running" || st.Pid != in.Pid {
					t.Errorf("after detaching: %+v, want still running as pid %d", st, in.Pid)
				}

				// What the check after stop looks for is there while it runs.
				running := strings.Join(leftovers(root, name, ns), ", ")
				for _, want := range []string{"acetate process", fmt.Sprintf("process %d of the container", in.Pid), "mount ", "cgroup /sys/fs/cgroup/"} {
					if !strings.Contains(running, want) {
						t.Errorf("running, %s has no %q: %s", name, want, running)
					}
				}

				begin = time.Now()
				ok(t, run(t, root, nil, "stop", name))
				took := time.Since(begin)
				t.Logf("stopped in %v", took.Round(time.Millisecond))
				if st := inspect(t, root, name); st.State != "exited" || st.ExitCode == nil || *st.ExitCode != 0 || took > 30*time.Second {
					t.Errorf("after stop (%v): %+v, want exited 0, a clean shutdown within the timeout (60 s)", took, st)
				}
				log := ok(t, run(t, root, nil, "logs", name)).stdout
				for _, want := range bootChecks[tree].halted {
					if !strings.Contains(log, want) {
						t.Errorf("the log does not show %q:\n%s", want, tail(log, 2000))
					}
				}
				noLeftovers(t, root, name, ns)
			})
		}
	}
}

// A booted container keeps its configuration: limits, environment and
// hostname apply at every start without flags, and set --memory changes
// the limit of the running container at once.
func TestMachineSavedSettings(t *testing.T) {
	root := machineRoot(t, "systemd")
	const c = "mt-settings"
	machine(t, root, c, "--from", "systemd", "--memory", "100m", "--pids", "50", "--cpus", "0.5", "-e", "FOO=bar", "--hostname", "box1")
	for range 2 {
		ok(t, run(t, root, nil, "start", c))
		waitReady(t, root, c, "systemd")
		checkRunning(t, root, c, "104857600")
		ok(t, run(t, root, nil, "stop", c))
	}
	ok(t, run(t, root, nil, "start", c))
	waitReady(t, root, c, "systemd")
	ok(t, run(t, root, nil, "set", c, "--memory", "150m"))
	checkRunning(t, root, c, "157286400")
	ok(t, run(t, root, nil, "stop", c))
	if s := inspect(t, root, c).Settings; s.Memory != 150<<20 || s.Hostname != "box1" {
		t.Errorf("settings after set: %+v", s)
	}
}

// crash simulates a host crash under the containers names of store root:
// kill -9 of their acetate processes (supervisors, FUSE servers) and of every
// process in them, a lazy unmount of every mount of the store, and, as the
// host's reboot does, the removal of their (empty) cgroups. Only this
// test's processes are touched: this binary's acetate with files open in
// the store, and the processes of the containers' own pid namespaces.
func crash(t *testing.T, root string, names ...string) {
	t.Helper()
	var nss []string
	for _, name := range names {
		if in := inspect(t, root, name); in.Pid > 0 {
			nss = append(nss, pidNS(t, in.Pid))
		}
	}
	victims := func() []int {
		var pids []int
		for _, pid := range hostPids() {
			ns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
			if acetateProc(pid, filepath.Join(root, "containers")) || slices.Contains(nss, ns) {
				pids = append(pids, pid)
			}
		}
		return pids
	}
	killed := map[int]bool{}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		pids := victims()
		if len(pids) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes %v survive kill -9", pids)
		}
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
			killed[pid] = true
		}
	}
	t.Logf("crash: kill -9 of %d processes, umount -l of %d mounts", len(killed), len(storeMounts(root)))
	for _, m := range storeMounts(root) {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil {
			t.Fatalf("umount -l %s: %v", m, err)
		}
	}
	for _, name := range names {
		for _, dir := range containerCgroups(name) {
			removeCgroupTree(t, dir)
		}
	}
}

// removeCgroupTree removes the empty cgroup dir and those below it.
func removeCgroupTree(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.IsDir() {
			removeCgroupTree(t, filepath.Join(dir, e.Name()))
		}
	}
	if err := os.Remove(dir); err != nil {
		t.Fatalf("remove the cgroup of a crashed container: %v", err)
	}
}

// psStarted returns when the running container name started, from ps.
func psStarted(t *testing.T, root, name string) time.Time {
	t.Helper()
	var list []struct {
		Name    string
		Started *time.Time
	}
	if err := json.Unmarshal([]byte(ok(t, run(t, root, nil, "ps", "--format", "json")).stdout), &list); err != nil {
		t.Fatal(err)
	}
	for _, e := range list {
		if e.Name == name && e.Started != nil {
			return *e.Started
		}
	}
	t.Fatalf("%s does not run", name)
	return time.Time{}
}

// After a host crash (every acetate process and container process killed,
// every mount gone), autostart starts every --onboot container again with
// its data, in --boot-order, and no other; autostart --stop stops them.
func TestHostCrashAutostart(t *testing.T) {
	root := machineRoot(t, "systemd", "sysvinit")
	const booted, cmd, off = "mt-crash-booted", "mt-crash-cmd", "mt-crash-off"
	machine(t, root, booted, "--from", "systemd", "--onboot", "--boot-order", "1")
	machine(t, root, cmd, "--from", "sysvinit", "--driver", "fuse", "--onboot", "--boot-order", "2", "--", "sleep", "infinity")
	machine(t, root, off, "--from", "sysvinit", "--", "sleep", "infinity")
	for _, c := range []string{cmd, booted, off} {
		ok(t, run(t, root, nil, "start", c))
		ok(t, run(t, root, nil, "exec", c, "--", "sh", "-c", "echo data of "+c+" > /root/mark && sync"))
	}
	waitReady(t, root, booted, "systemd")
	crash(t, root, booted, cmd, off)
	for _, c := range []string{booted, cmd, off} {
		if st := ps(t, root)[c].State; st == "running" {
			t.Fatalf("%s is %s after the crash", c, st)
		}
	}

	r := ok(t, run(t, root, nil, "autostart", "--format", "json"))
	var started []struct{ Name, Error string }
	if err := json.Unmarshal([]byte(r.stdout), &started); err != nil || len(started) != 2 || started[0].Name != booted || started[1].Name != cmd {
		t.Errorf("autostart reported %q (%v), want %s then %s", r.stdout, err, booted, cmd)
	}
	for _, c := range []string{booted, cmd} {
		if st := ps(t, root)[c].State; st != "running" {
			t.Fatalf("%s is %s after autostart", c, st)
		}
		if got := ok(t, run(t, root, nil, "exec", c, "--", "cat", "/root/mark")).stdout; got != "data of "+c+"\n" {
			t.Errorf("%s after the crash: /root/mark holds %q", c, got)
		}
	}
	checkBooted(t, root, booted, "systemd")
	if b, c := psStarted(t, root, booted), psStarted(t, root, cmd); !b.Before(c) {
		t.Errorf("boot order 1 started at %v, boot order 2 at %v: want 1 first", b, c)
	}
	if st := ps(t, root)[off].State; st == "running" {
		t.Errorf("%s, not onboot, runs after autostart", off)
	}
	if r := ok(t, run(t, root, nil, "autostart", "--format", "json")); r.stdout != "[]\n" {
		t.Errorf("autostart with every onboot container running: %q, want []", r.stdout)
	}

	ok(t, run(t, root, nil, "autostart", "--stop"))
	for _, c := range []string{booted, cmd} {
		if e := ps(t, root)[c]; e.State != "exited" {
			t.Errorf("%s after autostart --stop: %+v, want exited", c, e)
		}
	}
	if e := ps(t, root)[booted]; e.ExitCode == nil || *e.ExitCode != 0 {
		t.Errorf("%s did not shut down cleanly at autostart --stop: %+v", booted, e)
	}
}

// logLines counts the lines of container name's log that are line.
func logLines(t *testing.T, root, name, line string) int {
	t.Helper()
	n := 0
	for _, l := range strings.Split(ok(t, run(t, root, nil, "logs", name)).stdout, "\n") {
		if l == line {
			n++
		}
	}
	return n
}

// Restart policies, docker's: always brings a container back after its
// init is killed; on-failure:3 restarts a failing command at most 3 times
// and leaves it exited with its code; unless-stopped stays down after stop,
// also across autostart, while an always container stopped by autostart
// --stop comes back at autostart.
func TestRestartPolicies(t *testing.T) {
	root := machineRoot(t, "sysvinit")
	t.Run("always", func(t *testing.T) {
		const c = "mt-always"
		machine(t, root, c, "--from", "sysvinit", "--restart", "always", "--", "sleep", "infinity")
		ok(t, run(t, root, nil, "start", c))
		first := inspect(t, root, c).Pid
		if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		var in inspected
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if in = inspect(t, root, c); in.State == "running" && in.Pid != first {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("not back 10 s after its init (pid %d) was killed: %+v", first, in)
			}
		}
		if r := ok(t, run(t, root, nil, "inspect", c)); !regexp.MustCompile(`(?m)^restarts +1$`).MatchString(r.stdout) {
			t.Errorf("inspect does not show 1 restart:\n%s", r.stdout)
		}
		// A stop is never undone by the policy (the first restart
		// waits 100 ms).
		ok(t, run(t, root, nil, "stop", c))
		time.Sleep(300 * time.Millisecond)
		if st := ps(t, root)[c].State; st != "exited" {
			t.Errorf("after stop: %s, want exited", st)
		}
	})
	t.Run("on-failure:3", func(t *testing.T) {
		const c = "mt-on-failure"
		machine(t, root, c, "--from", "sysvinit", "--restart", "on-failure:3", "--", "sh", "-c", "echo ran; exit 3")
		ok(t, run(t, root, nil, "start", c))
		// The supervisor gives up on it: no acetate process of c is left.
		dir := filepath.Join(root, "containers", c)
		for deadline := time.Now().Add(15 * time.Second); slices.ContainsFunc(hostPids(), func(pid int) bool { return acetateProc(pid, dir) }); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("still restarting after 15 s: %d runs", logLines(t, root, c, "ran"))
			}
		}
		if n := logLines(t, root, c, "ran"); n != 4 {
			t.Errorf("ran %d times, want 4 (the first run and 3 restarts)", n)
		}
		var in struct {
			State    string
			ExitCode *int
			Restarts int
		}
		json.Unmarshal([]byte(ok(t, run(t, root, nil, "inspect", c, "--format", "json")).stdout), &in)
		if in.State != "exited" || in.ExitCode == nil || *in.ExitCode != 3 || in.Restarts != 3 {
			t.Errorf("after giving up: %+v, want exited 3 after 3 restarts", in)
		}
	})
	t.Run("unless-stopped", func(t *testing.T) {
		const us, always = "mt-unless-stopped", "mt-always-2"
		machine(t, root, us, "--from", "sysvinit", "--restart", "unless-stopped", "--", "sleep", "infinity")
		machine(t, root, always, "--from", "sysvinit", "--restart", "always", "--", "sleep", "infinity")
		ok(t, run(t, root, nil, "start", us))
		ok(t, run(t, root, nil, "start", always))
		ok(t, run(t, root, nil, "stop", us))
		ok(t, run(t, root, nil, "autostart", "--stop"))
		for _, c := range []string{us, always} {
			if st := ps(t, root)[c].State; st != "exited" {
				t.Errorf("%s is %s after stop and autostart --stop", c, st)
			}
		}
		ok(t, run(t, root, nil, "autostart"))
		if st := ps(t, root)[us].State; st != "exited" {
			t.Errorf("%s, stopped by stop, is %s after autostart", us, st)
		}
		if st := ps(t, root)[always].State; st != "running" {
			t.Errorf("%s, stopped by autostart --stop, is %s after autostart", always, st)
		}
	})
}

// --pids 20 lets the container's own processes reach 20 (acetate's
// helpers are not counted) and no more; a limit too small to start
// anything is refused with a one-line error, exit 2, no Go runtime dump.
func TestPidsLimit(t *testing.T) {
	root := machineRoot(t, "sysvinit")
	const c = "mt-pids"
	machine(t, root, c, "--from", "sysvinit", "--pids", "20", "--", "sh", "-c", "for i in $(seq 19); do sleep 30 & done; echo forked; wait")
	ok(t, run(t, root, nil, "start", c))
	for deadline := time.Now().Add(10 * time.Second); logLines(t, root, c, "forked") == 0; time.Sleep(20 * time.Millisecond) {
		if in := inspect(t, root, c); in.State != "running" {
			log := run(t, root, nil, "logs", c)
			t.Errorf("with --pids 20, sh -c 'for i in $(seq 19); do sleep 30 & done; ...' ended at once: %s, exit code %d, log %q", in.State, *in.ExitCode, log.stdout+log.stderr)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the fork loop did not end in 10 s")
		}
	}
	if in := inspect(t, root, c); in.State == "running" {
		// The command's processes, whatever acetate runs beside them.
		own := slices.DeleteFunc(containerProcs(pidNS(t, in.Pid)), func(pid int) bool {
			comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
			return string(comm) != "sh\n" && string(comm) != "sleep\n"
		})
		if len(own) != 20 {
			t.Errorf("with --pids 20, the container's own processes are %d (sh and its sleeps), want 20", len(own))
		}
		// The limit is the container's: its pids cgroup counts those 20.
		if n := readPidsCurrent(t, in.Pid); n != 20 {
			t.Errorf("with --pids 20 and 20 processes, pids.current is %d", n)
		}
	}
	const small = "mt-pids-small"
	machine(t, root, small, "--from", "sysvinit")
	for _, args := range [][]string{
		{"run", small, "--pids", "1", "--", "true"},
		{"start", small, "--pids", "1"},
		{"create", "mt-pids-1", "--from", "sysvinit", "--pids", "1"},
		{"run", small, "--memory", "1k", "--", "true"},
	} {
		flag := args[slices.IndexFunc(args, func(a string) bool { return strings.HasPrefix(a, "--") && a != "--from" })]
		r := run(t, root, nil, args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, flag) || strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 || r.stdout != "" {
			t.Errorf("acetate %v: exit %d, stdout %q, stderr %q; want exit 2 and one line naming %s", args, r.code, r.stdout, tail(r.stderr, 500), flag)
		}
		if e := ps(t, root)[small]; e.State == "running" {
			t.Errorf("acetate %v started %s", args, small)
			ok(t, run(t, root, nil, "stop", "--time", "1", small))
		}
		if _, made := ps(t, root)["mt-pids-1"]; made {
			t.Errorf("acetate %v made a container", args)
			ok(t, run(t, root, nil, "rm", "mt-pids-1"))
		}
	}
	// A small limit that can run something runs it, or is refused in one
	// line: never a crash of acetate's init.
	r := run(t, root, nil, "run", small, "--pids", "3", "--", "true")
	if r.code != 0 && (r.code != exitUsage || strings.Count(strings.TrimSpace(r.stderr), "\n") > 0) || strings.Contains(r.stderr, "goroutine") {
		t.Errorf("run --pids 3 true: exit %d, stderr %q", r.code, tail(r.stderr, 500))
	}
}

// A container running in the foreground (run) stops by name: stop, kill
// and rm --force each end the run, and leave nothing of it. Its command,
// sleep, is PID 1 and has no handler for SIGTERM: stop kills it at once.
func TestForegroundStopByName(t *testing.T) {
	root := machineRoot(t, "sysvinit")
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"stop"}, 128 + int(syscall.SIGKILL)},
		{[]string{"kill"}, 128 + int(syscall.SIGKILL)},
		{[]string{"rm", "--force"}, 128 + int(syscall.SIGKILL)},
	} {
		t.Run(c.args[0], func(t *testing.T) {
			name := "mt-fg-" + c.args[0]
			machine(t, root, name, "--from", "sysvinit")
			ended := make(chan result, 1)
			go func() {
				cmd := exec.Command(binary, "--root", root, "run", name, "--", "sleep", "100")
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				err := cmd.Run()
				code := 0
				if ee, isExit := err.(*exec.ExitError); isExit {
					code = ee.ExitCode()
				} else if err != nil {
					code = -1
				}
				ended <- result{code: code, stderr: stderr.String()}
			}()
			waitState(t, root, name, "running")
			ns := pidNS(t, inspect(t, root, name).Pid)
			ok(t, run(t, root, nil, append(c.args, name)...))
			select {
			case r := <-ended:
				if r.code != c.code {
					t.Errorf("the run ended with exit %d, %q; want %d", r.code, r.stderr, c.code)
				}
			case <-time.After(15 * time.Second):
				t.Fatalf("the run did not end 15 s after %v", c.args)
			}
			if e, listed := ps(t, root)[name]; listed == (c.args[0] == "rm") || listed && e.State != "exited" {
				t.Errorf("after %v: %+v (listed %v)", c.args, e, listed)
			}
			noLeftovers(t, root, name, ns)
		})
	}
}

// enter opens a login shell, as vzctl enter does: root's shell from the
// container's passwd, in its home, with HOME and USER, on a terminal; and
// exec --user gives the user's HOME and USER too.
func TestEnter(t *testing.T) {
	root := machineRoot(t, "sysvinit")
	const c = "mt-enter"
	machine(t, root, c, "--from", "sysvinit")
	ok(t, run(t, root, nil, "start", c))
	waitReady(t, root, c, "sysvinit")
	master, slave := testtree.PTY(t)
	defer master.Close()
	cmd := exec.Command(binary, "--root", root, "enter", c)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	master.Write([]byte("echo at=$(pwd) home=$HOME user=$USER; exit 7\n"))
	out, _ := io.ReadAll(master) // ends with EIO once the terminal closes
	err := cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 7 {
		t.Errorf("enter exited %d (%v), want the shell's 7; output %q", code, err, out)
	}
	// bash says logout as a login shell ends.
	if want := "at=/root home=/root user=root"; !strings.Contains(string(out), want) || !strings.Contains(string(out), "logout") {
		t.Errorf("enter: output %q, want %q and a login shell's logout", out, want)
	}
	r := ok(t, run(t, root, nil, "exec", "--user", "nobody", c, "--", "sh", "-c", "echo $HOME $USER $(id -u)"))
	if r.stdout != "/nonexistent nobody 65534\n" {
		t.Errorf("exec --user nobody: %q, want nobody's HOME and USER", r.stdout)
	}
	if r := run(t, root, nil, "enter", c); r.code != exitUsage {
		t.Errorf("enter without a terminal: exit %d (%s), want %d", r.code, r.stderr, exitUsage)
	}
}

// readPidsCurrent returns pids.current of the cgroup of the container whose
// init is pid.
func readPidsCurrent(t *testing.T, pid int) int {
	t.Helper()
	n, err := strconv.Atoi(cgroupFile(t, pid, "pids", "pids.current", "pids.current"))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A container's --stop-signal is what stop sends; restart stops it and
// starts it again with its settings (a new init); start --console boots
// attached to the console and detaches on Ctrl-].
func TestStopSignalRestartConsole(t *testing.T) {
	root := machineRoot(t, "sysvinit")
	const c = "mt-signal"
	machine(t, root, c, "--from", "sysvinit", "--stop-signal", "HUP", "--",
		"sh", "-c", `trap "exit 7" HUP; while :; do sleep 0.1; done`)
	ok(t, run(t, root, nil, "start", c))
	first := inspect(t, root, c).Pid
	ok(t, run(t, root, nil, "restart", "--time", "5", c))
	if in := inspect(t, root, c); in.State != "running" || in.Pid == first {
		t.Errorf("after restart: %s, pid %d (was %d); want running with a new init", in.State, in.Pid, first)
	}
	ok(t, run(t, root, nil, "stop", "--time", "5", c))
	if in := inspect(t, root, c); in.ExitCode == nil || *in.ExitCode != 7 {
		t.Errorf("stop with --stop-signal HUP right after restart: %+v, want exit 7 (the command's HUP trap)", in)
	}

	// The first boot lines of rcS, not init's own (see bootChecks).
	const booted = "mt-console"
	machine(t, root, booted, "--from", "sysvinit")
	r := runFrom(t, nil, root, &keyAfter{delay: 2 * time.Second, key: 0x1d}, "start", booted, "--console")
	if r.code != 0 || !strings.Contains(r.stdout, "Using makefile-style concurrent boot") || !strings.Contains(r.stderr, "Detached from "+booted) {
		t.Errorf("start --console: exit %d, stdout %q, stderr %q; want the boot on the console, then detached", r.code, tail(r.stdout, 300), r.stderr)
	}
	if in := inspect(t, root, booted); in.State != "running" {
		t.Errorf("after start --console and a detach: %s, want running", in.State)
	}
}
