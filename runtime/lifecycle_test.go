package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestExitCodes(t *testing.T) {
	withInit := func(s *Spec) { s.Init = true }
	for _, c := range []struct {
		script string
		init   bool
		want   int
	}{
		{"exit 0", false, 0},
		{"exit 1", false, 1},
		{"exit 255", false, 255},
		{"exec no-such-cmd", false, 127},
		{"exec /etc/passwd", false, 126},
		{"sleep 0.01; false", false, 1},
		// The command is PID 1: the kernel drops a signal it does not
		// handle, from itself as from anyone but the kernel's SIGKILL,
		// as in a docker container.
		{"kill -TERM $$; kill -USR1 $$; exit 4", false, 4},
		// Under acetate's init, the command is killed as anywhere.
		{"kill -TERM $$", true, 128 + 15},
		{"kill -KILL $$", true, 128 + 9},
		{"kill -USR1 $$", true, 128 + 10},
		{"exec no-such-cmd", true, 127},
	} {
		mod := func(*Spec) {}
		if c.init {
			mod = withInit
		}
		if r := sh(t, c.script, mod); r.code != c.want {
			t.Errorf("%q (init %v): exit %d, want %d (%+v)", c.script, c.init, r.code, c.want, r)
		}
	}
}

func TestCommandNotFound(t *testing.T) {
	root := overlayRoot(t)
	r := runSpec(t, Spec{Rootfs: root, Args: []string{"no-such-command", "x"}})
	if r.code != 127 || !strings.Contains(r.stderr, "no-such-command") || !strings.Contains(r.stderr, "not found") {
		t.Fatalf("want 127 and a message, got %+v", r)
	}
	r = runSpec(t, Spec{Rootfs: root, Args: []string{"/etc/hostname"}})
	if r.code != 126 {
		t.Fatalf("not executable: want 126, got %+v", r)
	}
}

func TestEnvWorkdirUser(t *testing.T) {
	r := sh(t, `echo "$FOO|$PATH|$(pwd)|$(id -u):$(id -g)"`, func(s *Spec) {
		s.Env = []string{"FOO=image", "FOO=bar"} // the later wins
		s.Workdir = "/srv/app"
		s.User, s.Group = 33, 33
	})
	if r.code != 0 || r.stdout != "bar|"+DefaultPath+"|/srv/app|33:33\n" {
		t.Fatalf("got %+v", r)
	}
}

func TestStdin(t *testing.T) {
	spec := Spec{Rootfs: overlayRoot(t), Args: []string{"/bin/sh", "-c", "tr a-z A-Z"}, Stdin: strings.NewReader("hello\n")}
	if r := runSpec(t, spec); r.code != 0 || r.stdout != "HELLO\n" {
		t.Fatalf("got %+v", r)
	}
}

func TestRunContextCancelKills(t *testing.T) {
	root := overlayRoot(t)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		waitFor(t, "the container to start", func() bool {
			_, err := os.Stat(filepath.Join(root, "started"))
			return err == nil
		})
		cancel()
	}()
	code, err := Run(ctx, Spec{Rootfs: root, Args: []string{"/bin/sh", "-c", "trap '' TERM; touch /started; sleep 1000"}})
	if code != 137 || !errors.Is(err, context.Canceled) {
		t.Fatalf("got %d, %v; want 137, context.Canceled", code, err)
	}
}

// A container's command starts with every signal at its default action,
// whatever the process that started its supervisor ignores: a supervisor
// started under nohup passed SIGHUP ignored on to its containers, where a
// shell cannot trap it, and stop, its HUP dropped, killed the command
// (TestStopSignalRestartConsole failed so in a CI rehearsal run under
// nohup).
func TestCommandStartsWithDefaultSignals(t *testing.T) {
	signal.Ignore(syscall.SIGHUP)
	defer signal.Reset(syscall.SIGHUP)
	root := overlayRoot(t)
	dir, _ := startTest(t, Spec{Rootfs: root, StopSignal: "HUP", Args: []string{"/bin/sh", "-c",
		`grep SigIgn /proc/self/status > /ignored; trap "exit 7" HUP; touch /trapped; while :; do sleep 0.05; done`}})
	waitFor(t, "the trap", func() bool {
		_, err := os.Stat(filepath.Join(root, "trapped"))
		return err == nil
	})
	if b, err := os.ReadFile(filepath.Join(root, "ignored")); err != nil || string(b) != "SigIgn:\t0000000000000000\n" {
		t.Errorf("the command's ignored signals: %q (%v), want none", b, err)
	}
	if err := Stop(dir, time.Minute); err != nil {
		t.Fatal(err)
	}
	if e := readExit(t, dir); e.Code != 7 {
		t.Fatalf("stopped with HUP: %+v, want exit 7 from the command's trap", e)
	}
}

func TestRunForwardsSignals(t *testing.T) {
	root := overlayRoot(t)
	// Keep SIGUSR1 from killing the test binary whatever happens, and send
	// it until Run returns: Run starts relaying concurrently with the start.
	own := make(chan os.Signal, 1)
	signal.Notify(own, syscall.SIGUSR1)
	defer signal.Stop(own)
	done := make(chan struct{})
	go func() {
		waitFor(t, "the container to start", func() bool {
			_, err := os.Stat(filepath.Join(root, "started"))
			return err == nil
		})
		for {
			syscall.Kill(os.Getpid(), syscall.SIGUSR1)
			select {
			case <-done:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	r := runSpec(t, Spec{Rootfs: root, Args: []string{"/bin/sh", "-c",
		"trap 'exit 42' USR1; touch /started; while :; do sleep 0.05; done"}})
	close(done)
	if r.code != 42 {
		t.Fatalf("want the trap's 42, got %+v", r)
	}
}

func TestRunTerminal(t *testing.T) {
	var out bytes.Buffer
	spec := Spec{Rootfs: overlayRoot(t), Terminal: true, Stdout: &out,
		Args: []string{"/bin/sh", "-c", "tty; test -t 0 && test -t 1 && echo isatty; exit 5"}}
	code, err := Run(context.Background(), spec)
	if err != nil || code != 5 {
		t.Fatalf("got %d, %v", code, err)
	}
	got := strings.ReplaceAll(out.String(), "\r\n", "\n")
	if got != "/dev/pts/0\nisatty\n" {
		t.Fatalf("output %q", got)
	}
}

func readExit(t *testing.T, dir string) *ExitStatus {
	t.Helper()
	st, err := LoadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Running || st.Exit == nil {
		t.Fatalf("container still running: %+v", st)
	}
	return st.Exit
}

func TestStartStopLog(t *testing.T) {
	dir, pid := startTest(t, Spec{Args: []string{"/bin/sh", "-c",
		"echo out; echo err >&2; trap 'echo bye; exit 7' TERM; while :; do sleep 0.05; done"}})
	st, err := LoadState(dir)
	if err != nil || !st.Running || st.Pid != pid {
		t.Fatalf("LoadState: %+v, %v", st, err)
	}
	waitFor(t, "output in the log", func() bool {
		data, _ := os.ReadFile(filepath.Join(dir, "log"))
		return strings.Contains(string(data), "err")
	})
	if err := Stop(dir, time.Minute); err != nil {
		t.Fatal(err)
	}
	log, _ := os.ReadFile(filepath.Join(dir, "log"))
	if e := readExit(t, dir); e.Code != 7 {
		t.Fatalf("exit %+v, want 7 from the TERM trap; log %q", e, log)
	}
	// One record a line, each with its stream and time, in the order of
	// their times (the two streams' lines may come in either order).
	got := map[string][]string{}
	var last time.Time
	for _, line := range strings.SplitAfter(string(log), "\n") {
		if line == "" {
			continue
		}
		r := ParseLogLine([]byte(strings.TrimSuffix(line, "\n")))
		got[r.Stream] = append(got[r.Stream], string(r.Text))
		if r.Time.Before(last) || time.Since(r.Time) > time.Minute || r.Partial {
			t.Errorf("record %q: time %v after %v, partial %v", line, r.Time, last, r.Partial)
		}
		last = r.Time
	}
	if !slices.Equal(got[StreamStdout], []string{"out", "bye"}) || !slices.Equal(got[StreamStderr], []string{"err"}) {
		t.Fatalf("log %q: records %q, want out and bye on stdout, err on stderr", log, got)
	}
	if syscall.Kill(pid, 0) == nil {
		t.Fatalf("init %d still alive", pid)
	}
}

func TestStopKillsWhenTermIgnored(t *testing.T) {
	dir, _ := startTest(t, Spec{Args: []string{"/bin/sh", "-c", "trap '' TERM; touch /started; sleep 1000 & wait"}})
	st, _ := LoadState(dir)
	waitFor(t, "the container to start", func() bool {
		_, err := os.Stat(filepath.Join(st.Spec.Rootfs, "started"))
		return err == nil
	})
	t0 := time.Now()
	if err := Stop(dir, 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if e := readExit(t, dir); e.Code != 137 {
		t.Fatalf("exit %+v, want 137", e)
	}
	t.Logf("stopped in %v", time.Since(t0).Round(time.Millisecond))
}

func TestStartTwiceFails(t *testing.T) {
	dir, _ := startTest(t, Spec{Args: []string{"sleep", "1000"}})
	_, err := Start(Spec{Rootfs: overlayRoot(t), StateDir: dir, Args: []string{"true"}})
	if !errors.Is(err, ErrRunning) {
		t.Fatalf("second Start: %v, want ErrRunning", err)
	}
	_, err = Run(context.Background(), Spec{Rootfs: overlayRoot(t), StateDir: dir, Args: []string{"true"}})
	if !errors.Is(err, ErrRunning) {
		t.Fatalf("Run on a running state dir: %v, want ErrRunning", err)
	}
	// Once stopped, the state directory can be used again.
	if err := Stop(dir, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := Start(Spec{Rootfs: overlayRoot(t), StateDir: dir, Args: []string{"true"}}); err != nil {
		t.Fatalf("Start after Stop: %v", err)
	}
}

// Stop sends the stop signal to a command that is PID 1 when it takes
// it, and kills one that does not at once: the kernel would drop the
// signal, and the stop would wait out its timeout for nothing.
func TestStopCommandAsPID1(t *testing.T) {
	trapped, pid := startTest(t, Spec{CgroupName: testCgroupName(),
		Args: []string{"/bin/sh", "-c", "trap 'exit 7' TERM; while :; do sleep 0.05; done"}})
	waitFor(t, "the shell's trap", func() bool {
		caught, _, err := signalDisposition(pid, syscall.SIGTERM)
		return err == nil && caught
	})
	plain, _ := startTest(t, Spec{CgroupName: testCgroupName(), Args: []string{"sleep", "1000"}})
	for dir, want := range map[string]int{trapped: 7, plain: 137} {
		if err := Stop(dir, time.Minute); err != nil {
			t.Fatal(err)
		}
		if st, err := LoadState(dir); err != nil || st.Exit == nil || st.Exit.Code != want {
			t.Errorf("%s: %+v %v, want exit %d", dir, st, err, want)
		}
	}
}

// A stop right after a start waits for the command to set up its handler
// (a shell's trap, here a moment late) instead of killing it at once.
func TestStopJustStarted(t *testing.T) {
	dir, pid := startTest(t, Spec{CgroupName: testCgroupName(),
		Args: []string{"/bin/sh", "-c", "sleep 0.3; trap 'exit 7' TERM; while :; do sleep 0.05; done"}})
	// Its handler, not its mask: dash blocks every signal for a moment
	// while it vforks a command, which is what the stop must see past.
	if caught, _, err := signalDisposition(pid, syscall.SIGTERM); err != nil || caught {
		t.Fatalf("the shell caught TERM before its trap (%v)", err)
	}
	if err := Stop(dir, time.Minute); err != nil {
		t.Fatal(err)
	}
	if st, err := LoadState(dir); err != nil || st.Exit == nil || st.Exit.Code != 7 {
		t.Errorf("stopped just after its start: %+v %v, want exit 7 (its trap)", st.Exit, err)
	}
}

// A process that starts with the stop signal blocked and sets its handler
// up a moment later (as dash does when it vforks a command before its
// trap) is found taking it only once the handler is there: a signal sent
// while it is blocked would be dropped when it unblocks, PID 1 having no
// handler yet.
func TestCatchesOnceStartedBlockedAtStart(t *testing.T) {
	perl, err := exec.LookPath("perl")
	if err != nil {
		t.Skip("no perl (perl-base) to block a signal with")
	}
	cmd := exec.Command(perl, "-e", `use POSIX;
		my $term = POSIX::SigSet->new(SIGTERM);
		sigprocmask(SIG_BLOCK, $term);
		select(undef, undef, undef, 0.3);
		$SIG{TERM} = sub { exit 7 };
		sigprocmask(SIG_UNBLOCK, $term);
		sleep 10;`)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	waitFor(t, "the signal blocked", func() bool {
		_, blocked, err := signalDisposition(cmd.Process.Pid, syscall.SIGTERM)
		return err == nil && blocked
	})
	if !catchesOnceStarted(cmd.Process.Pid, syscall.SIGTERM, time.Time{}) {
		t.Fatal("not taken, though its handler comes")
	}
	if caught, _, err := signalDisposition(cmd.Process.Pid, syscall.SIGTERM); err != nil || !caught {
		t.Errorf("taken before its handler was set (%v)", err)
	}
}

// A process that blocks the stop signal and reads it from a signalfd (as
// systemd does) takes it at once, however young: a booted container
// stopped right after it came up waited for its init to be a second old.
// One without a signalfd for it does not count by that.
func TestCatchesBySignalfd(t *testing.T) {
	perl, err := exec.LookPath("perl")
	if err != nil {
		t.Skip("no perl (perl-base) to make a signalfd with")
	}
	cmd := exec.Command(perl, "-e", fmt.Sprintf(`use POSIX;
		sigprocmask(SIG_BLOCK, POSIX::SigSet->new(SIGTERM));
		my $mask = pack("Q", 1 << (SIGTERM - 1));
		syscall(%d, -1, $mask, 8, 0) >= 0 or die "signalfd: $!";
		sleep 10;`, unix.SYS_SIGNALFD4))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	pid := cmd.Process.Pid
	waitFor(t, "the signalfd", func() bool { return readsFromSignalfd(pid, syscall.SIGTERM) })
	if readsFromSignalfd(pid, syscall.SIGINT) {
		t.Error("a signalfd for SIGINT found: its mask is SIGTERM's alone")
	}
	if !catchesOnceStarted(pid, syscall.SIGTERM, time.Time{}) {
		t.Fatal("not taken")
	}
	if age, err := processAge(pid); err != nil || age >= startGrace {
		t.Errorf("taken only at age %v (%v): a signalfd counts at once", age, err)
	}
	if readsFromSignalfd(os.Getpid(), syscall.SIGTERM) {
		t.Error("this test process has no signalfd, and one was found")
	}
}

// The grace for a handler counts from when the command started, not only
// from the process's start: a container whose setup took longer than the
// grace (a loaded host) is stopped right after its start by its own
// signal, which its shell's trap, set a moment later, takes; it was
// killed instead (TestStopSignalRestartConsole in CI).
func TestGraceFromCommandStart(t *testing.T) {
	cmd := exec.Command("sh", "-c", `sleep 1.4; trap "exit 7" TERM; sleep 10`)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	pid := cmd.Process.Pid
	waitFor(t, "the grace since its start to end", func() bool {
		age, err := processAge(pid)
		return err == nil && age > startGrace
	})
	if caught, _, err := signalDisposition(pid, syscall.SIGTERM); err != nil || caught {
		t.Fatalf("the trap is set already (%v): the test proves nothing", err)
	}
	if !catchesOnceStarted(pid, syscall.SIGTERM, time.Now()) {
		t.Fatal("not taken, though its command started just now and its trap comes")
	}
}

// processAge counts from the process's start: this test process has run
// for some time, a new one for next to none.
func TestProcessAge(t *testing.T) {
	cmd := exec.Command("sleep", "10")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	young, err := processAge(cmd.Process.Pid)
	if err != nil || young < 0 || young > 500*time.Millisecond {
		t.Errorf("age of a process just started: %v %v", young, err)
	}
	time.Sleep(300 * time.Millisecond)
	if older, err := processAge(cmd.Process.Pid); err != nil || older < young+200*time.Millisecond {
		t.Errorf("300 ms later: %v %v, was %v", older, err, young)
	}
	if _, err := processAge(1 << 30); err == nil {
		t.Error("age of no process: no error")
	}
}

// A process started in the tick of the uptime's reading is 0 old, never
// less, at any uptime.
func TestAgeAtSameTick(t *testing.T) {
	for _, c := range []struct {
		uptime string
		ticks  uint64
		want   time.Duration
	}{{"4.06 1.00\n", 406, 0}, {"8.12 1.00\n", 812, 0}, {"66645.41 50728.16\n", 6664541, 0}, {"4.06 1.00\n", 400, 60 * time.Millisecond}} {
		if age, err := ageAt(c.uptime, c.ticks); err != nil || age != c.want {
			t.Errorf("uptime %q, started at tick %d: age %v, %v; want %v", c.uptime, c.ticks, age, err, c.want)
		}
	}
	if _, err := ageAt("garbage", 1); err == nil {
		t.Error("an unreadable uptime: no error")
	}
}

func TestZombiesReaped(t *testing.T) {
	root := overlayRoot(t)
	dir, pid := startTest(t, Spec{Rootfs: root, CgroupName: testCgroupName(), Init: true, Args: []string{"/bin/sh", "-c",
		// Each subshell exits at once, orphaning its sleep to PID 1.
		"for i in 1 2 3 4 5 6 7 8; do (sleep 1 &); done; touch /forked; exec sleep 1000"}})
	cg := containerCgroup(t, dir)
	procs := func() []string {
		data, err := os.ReadFile(filepath.Join(cg.dirs["pids"], "cgroup.procs"))
		if err != nil {
			t.Fatal(err)
		}
		return strings.Fields(string(data))
	}
	waitFor(t, "the orphans to be made", func() bool {
		_, err := os.Stat(filepath.Join(root, "forked"))
		return err == nil
	})
	// The orphans now belong to the container's init: its children, zombies
	// included until reaped, are listed in /proc/<pid>/task/*/children.
	children := func() []string {
		var out []string
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
		for _, f := range tasks {
			data, _ := os.ReadFile(f)
			out = append(out, strings.Fields(string(data))...)
		}
		return out
	}
	adopted := len(children())
	if adopted < 2 { // the sleep 1000 and at least one orphan
		t.Fatalf("init %d has %d children, want the orphans too", pid, adopted)
	}
	// Once they have exited and been reaped, only sleep 1000 is left.
	var left []string
	waitFor(t, "the orphans to be reaped", func() bool {
		left = children()
		return len(left) == 1
	})
	for _, p := range append(left, procs()...) {
		if n, _ := strconv.Atoi(p); processState(n) == "Z" {
			t.Errorf("zombie %s", p)
		}
	}
	t.Logf("%d processes adopted by init, all reaped", adopted-1)
}

func TestExec(t *testing.T) {
	dir, _ := startTest(t, Spec{Hostname: "exec-box", CgroupName: testCgroupName(), Env: []string{"A=0"},
		Args: []string{"sleep", "1000"}, Init: true})
	var out, errb bytes.Buffer
	code, err := Exec(context.Background(), dir, []string{"/bin/sh", "-c",
		`hostname; cat /proc/1/comm; grep -qx sleep /proc/[0-9]*/comm && echo sees-sleep; echo $A$B; s=$(grep -lx sleep /proc/[0-9]*/comm | head -1); if cmp -s /proc/self/cgroup ${s%comm}cgroup && ! grep -qv ':/$' /proc/self/cgroup; then echo same-cgroups; fi; cmp -s /proc/1/cgroup ${s%comm}cgroup || echo init-outside; grep CapEff /proc/self/status; exit 3`},
		ExecOptions{Env: []string{"B=2", "A=1"}, Stdout: &out, Stderr: &errb})
	if err != nil || code != 3 {
		t.Fatalf("Exec: %d, %v, %q", code, err, errb.String())
	}
	// The exec'd command is in the cgroups of the container's command;
	// acetate's init is in none of them (it does not count against the
	// container's limits).
	want := fmt.Sprintf("exec-box\nacetate-init\nsees-sleep\n12\nsame-cgroups\ninit-outside\nCapEff:\t%016x\n", capMask(defaultCapabilities))
	if out.String() != want {
		t.Fatalf("Exec output %q, want %q", out.String(), want)
	}
	// With a terminal of the container's own devpts.
	out.Reset()
	code, err = Exec(context.Background(), dir, []string{"tty"}, ExecOptions{Terminal: true, Stdout: &out})
	if err != nil || code != 0 || !strings.HasPrefix(out.String(), "/dev/pts/") {
		t.Fatalf("Exec -t: %d, %v, %q", code, err, out.String())
	}
	if _, err := Exec(context.Background(), dir, []string{"no-such-command"}, ExecOptions{}); err != nil {
		t.Fatal(err)
	}
	// Cancelling an exec kills its command, not only the helper.
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		st, _ := LoadState(dir)
		waitFor(t, "the exec'd command to start", func() bool {
			_, err := os.Stat(filepath.Join(st.Spec.Rootfs, "exec-started"))
			return err == nil
		})
		cancel()
	}()
	code, err = Exec(ctx, dir, []string{"/bin/sh", "-c", "trap '' TERM; touch /exec-started; exec sleep 1000"}, ExecOptions{})
	if code != 137 || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Exec: %d, %v", code, err)
	}
	waitFor(t, "the cancelled command to die", func() bool {
		out.Reset()
		Exec(context.Background(), dir, []string{"/bin/sh", "-c", "grep -lx sleep /proc/[0-9]*/comm | wc -l"}, ExecOptions{Stdout: &out})
		return out.String() == "1\n" // the container's own sleep
	})
	Stop(dir, 0)
	if _, err := Exec(context.Background(), dir, []string{"true"}, ExecOptions{}); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Exec in a stopped container: %v, want ErrNotRunning", err)
	}
}

func TestBadInput(t *testing.T) {
	root := testRootfs(t)
	for name, spec := range map[string]Spec{
		"no command":        {Rootfs: root},
		"relative rootfs":   {Rootfs: "rootfs", Args: []string{"true"}},
		"limits, no cgroup": {Rootfs: root, Args: []string{"true"}, Limits: Limits{Memory: 1 << 20}},
		"bad network":       {Rootfs: root, Args: []string{"true"}, Network: "bridge"},
		"escaping cgroup":   {Rootfs: root, Args: []string{"true"}, CgroupName: "../x"},
		"relative workdir":  {Rootfs: root, Args: []string{"true"}, Workdir: "srv"},
		"bad env":           {Rootfs: root, Args: []string{"true"}, Env: []string{"NOEQUALS"}},
		"relative profile":  {Rootfs: root, Args: []string{"true"}, Seccomp: "profile.json"},
	} {
		if _, err := Run(context.Background(), spec); !errors.Is(err, ErrInvalidSpec) {
			t.Errorf("%s: Run: %v, want ErrInvalidSpec", name, err)
		}
	}
	if _, err := Start(Spec{Rootfs: root, Args: []string{"true"}}); !errors.Is(err, ErrInvalidSpec) {
		t.Errorf("Start without a state dir: %v", err)
	}
	if _, err := Start(Spec{Rootfs: root, Args: []string{"true"}, StateDir: t.TempDir(), Terminal: true}); !errors.Is(err, ErrInvalidSpec) {
		t.Errorf("Start with a terminal: %v", err)
	}
	for _, mem := range []string{"512x", "m", "1.5.2g"} {
		if _, err := ParseMemory(mem); err == nil {
			t.Errorf("ParseMemory(%q) accepted", mem)
		}
	}
	// A rootfs that does not exist fails at setup, with the reason, also
	// when the init fails while its parent moves it into its cgroups.
	for range 5 {
		_, err := Run(context.Background(), Spec{Rootfs: "/nonexistent-root", Args: []string{"true"}, CgroupName: testCgroupName()})
		if err == nil || !strings.Contains(err.Error(), "nonexistent-root") {
			t.Errorf("missing rootfs: %v", err)
		}
	}
}

func TestManyContainers(t *testing.T) {
	const n = 50
	type ctr struct {
		dir, cgroup string
		pid         int
	}
	ctrs := make([]ctr, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	roots := make([]string, n)
	for i := range ctrs {
		roots[i] = overlayRoot(t)
		ctrs[i].dir = testStateDir(t)
		ctrs[i].cgroup = testCgroupName()
	}
	for i := range ctrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pid, err := Start(Spec{Rootfs: roots[i], StateDir: ctrs[i].dir, CgroupName: ctrs[i].cgroup,
				Hostname: fmt.Sprintf("c%d", i), Args: []string{"sleep", "1000"}})
			if err != nil {
				errs <- fmt.Errorf("container %d: %w", i, err)
				return
			}
			ctrs[i].pid = pid
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range ctrs {
			Stop(c.dir, 0)
		}
	})
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	for _, c := range ctrs {
		if st, err := LoadState(c.dir); err != nil || !st.Running {
			t.Fatalf("%s not running: %+v %v", c.dir, st, err)
		}
	}
	for _, c := range ctrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := Stop(c.dir, 5*time.Second); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	for _, c := range ctrs {
		if syscall.Kill(c.pid, 0) == nil {
			t.Errorf("init %d still running", c.pid)
		}
		st, _ := LoadState(c.dir)
		// sleep, PID 1, has no handler for SIGTERM: Stop kills it.
		if st.Running || st.Exit == nil || st.Exit.Code != 137 {
			t.Errorf("%s: %+v, want killed (137)", c.dir, st)
		}
		for _, ctl := range cgroupV1Controllers {
			for _, base := range []string{cgroupRoot, filepath.Join(cgroupRoot, ctl)} {
				if _, err := os.Stat(filepath.Join(base, c.cgroup)); err == nil {
					t.Errorf("cgroup %s left in %s", c.cgroup, base)
				}
			}
		}
	}
}

func TestStateReadersDoNotBlockStart(t *testing.T) {
	root := overlayRoot(t)
	dir := testStateDir(t)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for r := 0; r < 2; r++ {
		wg.Add(1)
		go func() { // what "acetate ps" does, as often as it can
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
					LoadState(dir)
				}
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()
	for i := 0; i < 10; i++ {
		if _, err := Start(Spec{Rootfs: root, StateDir: dir, Args: []string{"sleep", "1000"}}); err != nil {
			t.Fatalf("start %d: %v", i, err)
		}
		if err := Stop(dir, 0); err != nil {
			t.Fatalf("stop %d: %v", i, err)
		}
	}
}
