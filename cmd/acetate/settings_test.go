package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// inspected is what the tests read of inspect --format json.
type inspected struct {
	State    string
	Pid      int
	ExitCode *int
	Reason   string `json:"exitReason"`
	// Address and Network: the bridge network's lease.
	Address, Network string
	Settings         struct {
		Args, Env  []string
		Hostname   string
		Memory     int64
		CPUs, Pids float64
	}
}

func inspect(t *testing.T, root, name string) inspected {
	t.Helper()
	var in inspected
	r := ok(t, run(t, root, nil, "inspect", name, "--format", "json"))
	if err := json.Unmarshal([]byte(r.stdout), &in); err != nil {
		t.Fatalf("inspect json: %v: %q", err, r.stdout)
	}
	return in
}

// cgroupFile reads a limit file of the cgroup of process pid: v1file in
// the controller's v1 hierarchy, or v2file on a cgroup v2 host.
func cgroupFile(t *testing.T, pid int, controller, v1file, v2file string) string {
	t.Helper()
	pid = commandPid(t, pid)
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	_, err = os.Stat("/sys/fs/cgroup/cgroup.controllers")
	v2 := err == nil
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.SplitN(line, ":", 3)
		var p string
		switch {
		case v2 && f[0] == "0":
			p = filepath.Join("/sys/fs/cgroup", f[2], v2file)
		case !v2 && strings.Contains(","+f[1]+",", ","+controller+","):
			p = filepath.Join("/sys/fs/cgroup", controller, f[2], v1file)
		default:
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	t.Fatalf("pid %d has no %s cgroup: %s", pid, controller, data)
	return ""
}

// checkRunning checks that the running container c has the limits, the
// environment and the hostname it was created with.
func checkRunning(t *testing.T, root, c, memory string) {
	t.Helper()
	in := inspect(t, root, c)
	if in.State != "running" || in.Pid == 0 {
		t.Fatalf("inspect %s: %+v, want running with a pid", c, in)
	}
	limits := [][2]string{
		{cgroupFile(t, in.Pid, "memory", "memory.limit_in_bytes", "memory.max"), memory},
		{cgroupFile(t, in.Pid, "pids", "pids.max", "pids.max"), "50"},
		{strings.Fields(cgroupFile(t, in.Pid, "cpu", "cpu.cfs_quota_us", "cpu.max"))[0], "50000"},
	}
	for _, l := range limits {
		if l[0] != l[1] {
			t.Errorf("%s: cgroup limit %q, want %q", c, l[0], l[1])
		}
	}
	r := ok(t, run(t, root, nil, "exec", c, "--", "sh", "-c", `echo "$FOO $(hostname) $(cat /etc/hostname)"`))
	if r.stdout != "bar box1 box1\n" {
		t.Errorf("%s: env and hostnames %q, want %q", c, r.stdout, "bar box1 box1\n")
	}
}

// create keeps the settings; start without flags applies them at every
// start; set changes limits of a running container at once and the rest
// at the next start; run's flags apply to that run only.
func TestSavedSettings(t *testing.T) {
	root := debianStore(t)
	ok(t, run(t, root, nil, "create", "c", "--from", "debian", "--memory", "64m", "--pids", "50", "--cpus", "0.5",
		"-e", "FOO=bar", "--hostname", "box1", "--", "sleep", "1000"))
	for range 2 {
		ok(t, run(t, root, nil, "start", "c"))
		checkRunning(t, root, "c", "67108864")
		ok(t, run(t, root, nil, "stop", "--time", "1", "c"))
	}
	ok(t, run(t, root, nil, "start", "c"))
	defer run(t, root, nil, "stop", "--time", "1", "c")
	r := ok(t, run(t, root, nil, "set", "c", "--memory", "128m", "--format", "json"))
	if !strings.Contains(r.stdout, `"now": [
    "memory"
  ]`) {
		t.Errorf("set --memory on a running container: %q, want memory applied now", r.stdout)
	}
	checkRunning(t, root, "c", "134217728")
	r = ok(t, run(t, root, nil, "set", "c", "-e", "FOO=baz"))
	if !strings.Contains(r.stdout, "c     -            env") {
		t.Errorf("set --env on a running container: %q, want it applied at next start", r.stdout)
	}
	checkRunning(t, root, "c", "134217728") // FOO=bar until the next start
	r = ok(t, run(t, root, nil, "inspect", "c"))
	for _, want := range []string{"state              running", "memory             134MB", "pids               50", "cpus               0.5", "command            sleep 1000"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("inspect table lacks %q:\n%s", want, r.stdout)
		}
	}
	ok(t, run(t, root, nil, "stop", "--time", "1", "c"))

	r = ok(t, run(t, root, nil, "run", "c", "--memory", "32m", "-e", "X=1", "--hostname", "h", "--", "sh", "-c", `echo $X $FOO $(cat /etc/hostname)`))
	if r.stdout != "1 baz h\n" {
		t.Errorf("run with flags: %q, want %q", r.stdout, "1 baz h\n")
	}
	in := inspect(t, root, "c")
	s := in.Settings
	if s.Memory != 128<<20 || s.Hostname != "box1" || strings.Join(s.Env, " ") != "FOO=baz" || strings.Join(s.Args, " ") != "sleep 1000" {
		t.Errorf("run's flags changed the settings: %+v", s)
	}
	if in.State != "exited" || in.ExitCode == nil || *in.ExitCode != 0 {
		t.Errorf("inspect after run: %+v, want exited 0", in)
	}
	liftLimits(t, root, "c")
}

// commandPid returns the pid of the command of the container whose init is
// pid: acetate's init is not in the container's cgroups (it does not count
// against its limits), its command is; a booted container's init is its
// own.
func commandPid(t *testing.T, pid int) int {
	t.Helper()
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil || string(comm) != "acetate-init\n" {
		return pid
	}
	children, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	f := strings.Fields(string(children))
	if err != nil || len(f) == 0 {
		t.Fatalf("container init %d has no command: %v", pid, err)
	}
	child, _ := strconv.Atoi(f[0])
	return child
}

// liftLimits checks that set lifts the limits of the running container c.
func liftLimits(t *testing.T, root, c string) {
	ok(t, run(t, root, nil, "start", c))
	defer run(t, root, nil, "stop", "--time", "1", c)
	ok(t, run(t, root, nil, "set", c, "--memory", "0", "--pids", "-1", "--cpus", "0"))
	pid := inspect(t, root, c).Pid
	memory := cgroupFile(t, pid, "memory", "memory.limit_in_bytes", "memory.max")
	pids := cgroupFile(t, pid, "pids", "pids.max", "pids.max")
	cpu := strings.Fields(cgroupFile(t, pid, "cpu", "cpu.cfs_quota_us", "cpu.max"))[0]
	if n, _ := strconv.ParseInt(memory, 10, 64); (memory != "max" && n < 1<<62) || pids != "max" || (cpu != "max" && cpu != "-1") {
		t.Errorf("limits after set --memory 0 --pids -1 --cpus 0: memory %s, pids %s, cpu quota %s; want none", memory, pids, cpu)
	}
}

// inspect says a container's end: the OOM killer, or a signal.
func TestInspectExitReason(t *testing.T) {
	root := debianStore(t)
	hog := `x=$(head -c 200000000 /dev/zero | tr '\0' a); echo survived`
	r := run(t, root, nil, "run", "--from", "debian", "c", "--memory", "16m", "--", "sh", "-c", hog)
	if in := inspect(t, root, "c"); r.code != 137 || !strings.Contains(in.Reason, "OOM") {
		t.Errorf("a command over its memory limit: exit %d, %q, inspect %+v; want 137, OOM-killed", r.code, r.stdout, in)
	}
	r = run(t, root, nil, "run", "c", "--init", "--", "sh", "-c", "kill -TERM $$")
	if in := inspect(t, root, "c"); r.code != 143 || in.Reason != "killed by signal 15 (SIGTERM)" {
		t.Errorf("a command killed by SIGTERM: exit %d, inspect %+v", r.code, in)
	}
}

// set refuses bad input with a usage or not-found code and changes nothing.
func TestSetRefused(t *testing.T) {
	root := debianStore(t)
	ok(t, run(t, root, nil, "create", "c", "--from", "debian", "--memory", "64m"))
	config := filepath.Join(root, "containers", "c", "config.json")
	before, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		code int
		want string
		args []string
	}{
		{3, "nosuch", []string{"set", "nosuch", "--memory", "1g"}},
		{2, "--memory", []string{"set", "c", "--memory", "1k"}},
		{2, "--memory", []string{"set", "c", "--pids", "9", "--memory", "12parsecs"}},
		{2, "--env", []string{"set", "c", "-e", "NOEQUALS"}},
		{2, "--workdir", []string{"set", "c", "-w", "relative"}},
		{2, "nothing to set", []string{"set", "c"}},
		{2, "--net", []string{"create", "d", "--from", "debian", "--net", "wifi"}},
		{3, "nosuch", []string{"inspect", "nosuch"}},
	} {
		refused(t, root, c.code, c.want, c.args...)
	}
	if after, _ := os.ReadFile(config); !bytes.Equal(before, after) {
		t.Errorf("refused set changed config.json:\n%s\nwas\n%s", after, before)
	}
	if r := run(t, root, nil, "inspect", "d"); r.code != 3 {
		t.Errorf("a refused create left container d: %+v", r)
	}
}

// HOME, USER and SHELL come from the container's /etc/passwd, TERM from
// the caller's terminal for -t only, /etc/hostname is the hostname's.
func TestUserEnvironment(t *testing.T) {
	root := debianStore(t)
	show := `echo "$HOME $USER $SHELL TERM=$TERM $(cat /etc/hostname)"`
	// --from creates box: its flags are box's settings
	r := ok(t, run(t, root, nil, "run", "--from", "debian", "box", "--hostname", "h1", "--", "sh", "-c", show))
	if want := "/root root /bin/bash TERM= h1\n"; r.stdout != want {
		t.Errorf("root: %q, want %q", r.stdout, want)
	}
	r = ok(t, run(t, root, nil, "run", "box", "--user", "nobody", "--", "sh", "-c", show))
	if want := "/nonexistent nobody /usr/sbin/nologin TERM= h1\n"; r.stdout != want {
		t.Errorf("nobody: %q, want %q", r.stdout, want)
	}
	r = ok(t, run(t, root, nil, "run", "box", "--driver", "fuse", "--read-only", "--", "cat", "/etc/hostname"))
	if r.stdout != "h1\n" {
		t.Errorf("/etc/hostname under the fuse driver, read-only: %q, want h1", r.stdout)
	}
	out := onTerminal(t, "xterm-test", "--root", root, "run", "-t", "box", "--", "sh", "-c", show)
	if want := "/root root /bin/bash TERM=xterm-test h1"; !strings.Contains(out, want) {
		t.Errorf("run -t: %q, want %q", out, want)
	}
}

// onTerminal runs acetate with a new pseudo-terminal as its standard
// streams and TERM=term, and returns what it wrote there.
func onTerminal(t *testing.T, term string, args ...string) string {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	slave, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "TERM="+term)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	var out bytes.Buffer
	_, err = io.Copy(&out, master) // EIO once the last holder of the slave ends
	if err != nil && !errors.Is(err, syscall.EIO) {
		t.Error(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("acetate %v: %v: %s", args, err, out.String())
	}
	return out.String()
}

// --init is a saved setting: a start with no flags runs acetate's init as
// PID 1, inspect shows it, and set --init=false makes the command PID 1
// again at the next start.
func TestInitSetting(t *testing.T) {
	root := debianStore(t)
	ok(t, run(t, root, nil, "create", "i", "--from", "debian", "--init", "--", "sleep", "1000"))
	pid1 := func() string {
		ok(t, run(t, root, nil, "start", "i"))
		defer run(t, root, nil, "stop", "--time", "1", "i")
		return strings.TrimSpace(ok(t, run(t, root, nil, "exec", "i", "--", "cat", "/proc/1/comm")).stdout)
	}
	if got := pid1(); got != "acetate-init" {
		t.Errorf("created with --init: PID 1 is %q, want acetate-init", got)
	}
	if r := ok(t, run(t, root, nil, "inspect", "i")); !regexp.MustCompile(`(?m)^\s*init\s+true$`).MatchString(r.stdout) {
		t.Errorf("inspect does not show init true:\n%s", r.stdout)
	}
	ok(t, run(t, root, nil, "set", "i", "--init=false"))
	if got := pid1(); got != "sleep" {
		t.Errorf("after set --init=false: PID 1 is %q, want the command, sleep", got)
	}
}
