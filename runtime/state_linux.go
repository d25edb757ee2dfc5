package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/acetate/acetate/internal/atomicfile"
	"golang.org/x/sys/unix"
)

// The files of a state directory.
const (
	// lockFile is write-locked (an open file description lock, fcntl
	// F_OFD_SETLK) for as long as the container runs, by the
	// process supervising it: the supervisor of a detached container, the
	// caller of Run for a foreground one.
	lockFile = "lock"
	// configFile is the Spec, as JSON, without its streams.
	configFile = "config.json"
	// pidFile is the host pid of the container's init, in decimal.
	pidFile = "pid"
	// logFile receives a detached container's stdout and stderr, a
	// record a line (see logfile.go).
	logFile = "log"
	// exitFile is an ExitStatus as JSON, written when the container ends.
	exitFile = "exit.json"
	// hostnameFile is the container's /etc/hostname, bound read-only over
	// the root's own (see setupRootfs).
	hostnameFile = "hostname"
	// hostsStateFile is the container's /etc/hosts when no network
	// gives one (see etcHosts).
	hostsStateFile = "hosts"
)

// ErrRunning is returned when a state directory already has a running
// container.
var ErrRunning = errors.New("container is already running")

// ErrNotRunning is returned by Exec for a container that is not running.
var ErrNotRunning = errors.New("container is not running")

// ExitStatus is how a container ended.
type ExitStatus struct {
	// Code is the exit code: the command's exit status, or 128+n when
	// signal n killed it.
	Code int `json:"exitCode"`
	// Finished is when the container ended.
	Finished time.Time `json:"finishedAt"`
	// OOMKilled reports that the kernel's OOM killer killed a process of
	// the container: it reached its memory limit.
	OOMKilled bool `json:"oomKilled,omitempty"`
	// Restarts is how many times its restart policy had started it again.
	Restarts int `json:"restarts,omitempty"`
}

// State is what a state directory says about a container.
type State struct {
	// Dir is the state directory.
	Dir string
	// Running reports whether the container runs.
	Running bool
	// Pid is the host pid of the container's init while it runs, else 0.
	Pid int
	// Exit is how the container last ended; nil when it runs or never ran.
	Exit *ExitStatus
	// Spec is the container's spec, without its streams.
	Spec Spec
	// Stopped reports that Stop stopped it (since it last started): no
	// restart policy starts it again.
	Stopped bool
	// Restarts is how many times its restart policy started it again
	// since it was started, the run going on included.
	Restarts int
}

// LoadState reads the state of the container whose state directory is dir.
func LoadState(dir string) (*State, error) {
	st := &State{Dir: dir}
	data, err := os.ReadFile(filepath.Join(dir, configFile))
	if err != nil {
		return nil, fmt.Errorf("failed to load container state: %w", err)
	}
	if err := json.Unmarshal(data, &st.Spec); err != nil {
		return nil, fmt.Errorf("failed to load container state from %s: %w", dir, err)
	}
	running, err := isLocked(dir)
	if err != nil {
		return nil, err
	}
	st.Stopped = wasStopped(dir)
	if running {
		data, err := os.ReadFile(filepath.Join(dir, pidFile))
		if err == nil {
			st.Pid, _ = strconv.Atoi(strings.TrimSpace(string(data)))
		}
		// The supervisor holds the lock from before init starts to after
		// it is reaped: without a pid yet, the container is starting.
		st.Running = st.Pid > 0
	}
	// A start clears the exit status; the supervisor keeps it across a
	// restart: while running, it is that of the run before this one.
	data, err = os.ReadFile(filepath.Join(dir, exitFile))
	var e ExitStatus
	switch {
	case err != nil || json.Unmarshal(data, &e) != nil:
	case st.Running:
		st.Restarts = e.Restarts + 1
	default:
		st.Exit, st.Restarts = &e, e.Restarts
	}
	return st, nil
}

// stateDir is a state directory locked by the process supervising its
// container.
type stateDir struct {
	dir  string
	lock *os.File
	// oomKilled is recorded in the ExitStatus (see run).
	oomKilled bool
	// restarts is how many times the supervisor started the container again.
	restarts int
}

// lockStateDir creates dir when missing and takes its lock, failing with
// ErrRunning when another process holds it.
func lockStateDir(dir string) (*stateDir, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("failed to create state directory: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("failed to open state lock: %w", err)
	}
	// Readers (Stop waiting for the end) hold a read lock for an instant:
	// ride over them.
	for try := 0; ; try++ {
		err = setLock(f, unix.F_WRLCK, false)
		if err == nil {
			break
		}
		busy := errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES)
		if busy && try < 10 {
			time.Sleep(time.Millisecond)
			continue
		}
		f.Close()
		if busy {
			return nil, fmt.Errorf("state directory %s: %w", dir, ErrRunning)
		}
		return nil, fmt.Errorf("failed to lock state directory %s: %w", dir, err)
	}
	return &stateDir{dir: dir, lock: f}, nil
}

// isLocked reports whether a supervisor holds dir's lock.
func isLocked(dir string) (bool, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDONLY|unix.O_CLOEXEC, 0)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("failed to open state lock: %w", err)
	}
	defer f.Close()
	// F_OFD_GETLK tests without taking the lock, so a reader never makes a
	// concurrent Start fail.
	lk := unix.Flock_t{Type: unix.F_RDLCK, Whence: 0}
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_GETLK, &lk); err != nil {
		return false, fmt.Errorf("failed to test state lock: %w", err)
	}
	return lk.Type != unix.F_UNLCK, nil
}

// setLock takes an open file description lock of type typ (F_WRLCK or
// F_RDLCK) on all of f, waiting for it when wait is set. It is released when
// the last descriptor of f's open file description is closed, also in a
// process that inherited it.
func setLock(f *os.File, typ int16, wait bool) error {
	cmd := unix.F_OFD_SETLK
	if wait {
		cmd = unix.F_OFD_SETLKW
	}
	lk := unix.Flock_t{Type: typ, Whence: 0}
	for {
		err := unix.FcntlFlock(f.Fd(), cmd, &lk)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// prepare clears the files of a previous run and records spec.
func (s *stateDir) prepare(spec *Spec) error {
	for _, f := range []string{pidFile, exitFile, stoppedFile, frozenByFile} {
		if err := os.Remove(filepath.Join(s.dir, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("failed to clear state: %w", err)
		}
	}
	for f, content := range map[string]string{spec.etcHostname(): spec.Hostname + "\n", spec.etcHosts(): hostsFile(spec.Hostname)} {
		if f == "" {
			continue
		}
		if err := writeState(f, []byte(content)); err != nil {
			return err
		}
		if err := os.Chmod(f, 0o644); err != nil { // every user of the container reads it
			return fmt.Errorf("failed to write state: %w", err)
		}
	}
	data, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	return writeState(filepath.Join(s.dir, configFile), data)
}

// etcHosts is the host file holding the container's /etc/hosts, written
// by Start and Run in StateDir, when it has a hostname of its own, no
// network sets one (Spec.EtcFiles), and it does not share the host's
// network: localhost and its hostname, as docker and vzctl give them.
func (s *Spec) etcHosts() string {
	if s.StateDir == "" || s.Hostname == "" || s.Network == NetworkHost || s.EtcFiles["/etc/hosts"] != "" {
		return ""
	}
	return filepath.Join(s.StateDir, hostsStateFile)
}

// hostsFile is the /etc/hosts of a container named hostname.
func hostsFile(hostname string) string {
	return "127.0.0.1\tlocalhost\n127.0.1.1\t" + hostname + "\n::1\tlocalhost ip6-localhost ip6-loopback\n"
}

// etcHostname is the host file holding the container's /etc/hostname,
// written by Start and Run in StateDir; "" when there is none.
func (s *Spec) etcHostname() string {
	if s.StateDir == "" || s.Hostname == "" {
		return ""
	}
	return filepath.Join(s.StateDir, hostnameFile)
}

func (s *stateDir) writePid(pid int) error {
	return writeState(filepath.Join(s.dir, pidFile), []byte(strconv.Itoa(pid)))
}

func (s *stateDir) writeExit(code int) error {
	data, err := json.Marshal(ExitStatus{Code: code, Finished: time.Now().UTC(), OOMKilled: s.oomKilled, Restarts: s.restarts})
	if err != nil {
		return err
	}
	os.Remove(filepath.Join(s.dir, pidFile))
	return writeState(filepath.Join(s.dir, exitFile), data)
}

func (s *stateDir) close() { s.lock.Close() }

// writeState replaces a state file whole. It is not synced: the state of
// running processes means nothing after a power loss.
func writeState(path string, data []byte) error {
	if err := atomicfile.WriteFile(path, data, false); err != nil {
		return fmt.Errorf("failed to write state: %w", err)
	}
	return nil
}

// Start starts the container described by spec detached, and returns the
// host pid of its init once the command is running. spec.StateDir is
// required; it gets:
//
//	lock         held while the container runs (a second Start fails with ErrRunning)
//	config.json  the spec, without streams
//	pid          the init's host pid, while it runs
//	log          the command's stdout and stderr, a record a line (see ParseLogLine; stdin is /dev/null)
//	exit.json    the ExitStatus, once the container has ended
//	hostname     the container's /etc/hostname, bound read-only over the root's
//
// The container is run by the supervisor of spec.Supervisor (see
// supervisor): one process for all the containers started with that
// directory, which Start starts when none runs (the binary re-executed, in
// a session of its own) and which exits once it runs none. It starts the
// init, waits for it, records the exit status, removes the cgroups and
// applies the restart policy. The container's init is PID 1: it reaps
// orphans and forwards SIGTERM, SIGINT, SIGHUP and every other signal it
// receives to the command. spec.Terminal is not supported here.
func Start(spec Spec) (int, error) {
	if err := spec.validate(); err != nil {
		return -1, err
	}
	if spec.StateDir == "" {
		return -1, fmt.Errorf("%w: a detached container needs a state directory", ErrInvalidSpec)
	}
	if spec.Terminal {
		return -1, fmt.Errorf("%w: a detached container cannot have a terminal", ErrInvalidSpec)
	}
	spec.Stdin, spec.Stdout, spec.Stderr = nil, nil, nil
	sd, err := lockStateDir(spec.StateDir)
	if err != nil {
		return -1, err
	}
	defer sd.close() // the supervisor holds its own reference to the lock
	if err := spec.prepareBoot(); err != nil {
		return -1, err
	}
	if err := sd.prepare(&spec); err != nil {
		return -1, err
	}
	return startSupervised(&spec, sd)
}

// Stop times: how long Stop waits, by default, for a container to end
// after asking it to, before it kills it.
const (
	// DefaultStopTimeout is for a container running a command.
	DefaultStopTimeout = 10 * time.Second
	// DefaultBootStopTimeout is for a booted one, whose services each
	// get their own time to stop.
	DefaultBootStopTimeout = 60 * time.Second
)

// Stop stops the container of state directory dir: it asks it to end the
// way its init expects (Spec.Shutdown run inside, else Spec.StopSignal,
// SIGTERM by default: acetate's init, Spec.Init, forwards it to the
// command; a command that is PID 1 itself and has no handler for it is
// killed at once, as the kernel would drop it), then,
// if it has not ended after timeout (a negative timeout: the default of
// its kind, DefaultStopTimeout or DefaultBootStopTimeout), kills every
// process in it. It returns once the container's supervisor has recorded
// the exit and removed its cgroups. Stopping a container that does not
// run is not an error.
func Stop(dir string, timeout time.Duration) error {
	st, err := LoadState(dir)
	if err != nil {
		return err
	}
	// Before anything, so that no restart policy undoes the stop.
	if err := markStopped(dir); err != nil {
		return err
	}
	for !st.Running {
		// A supervisor without a pid is starting the init (it soon
		// has one) or waiting to restart it (it sees the mark and
		// exits); none: nothing runs.
		if locked, err := isLocked(dir); err != nil || !locked {
			return err
		}
		time.Sleep(5 * time.Millisecond)
		if st, err = LoadState(dir); err != nil {
			return err
		}
	}
	// A paused container's processes take no signal until they are thawed.
	if err := Resume(dir); err != nil && !errors.Is(err, ErrFreezer) && !errors.Is(err, ErrNotRunning) {
		return err
	}
	if timeout < 0 {
		timeout = DefaultStopTimeout
		if st.Spec.Boot {
			timeout = DefaultBootStopTimeout
		}
	}
	pidfd, err := unix.PidfdOpen(st.Pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return waitUnlocked(dir)
	}
	if err != nil {
		return fmt.Errorf("failed to open container init %d: %w", st.Pid, err)
	}
	defer unix.Close(pidfd)
	if err := st.askToStop(pidfd, timeout); err != nil {
		return err
	}
	if !waitPidfd(pidfd, timeout) {
		// PID 1 dying takes every process of the namespace with it.
		if err := unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("failed to kill container init %d: %w", st.Pid, err)
		}
		waitPidfd(pidfd, -1)
	}
	return waitUnlocked(dir)
}

// askToStop asks the container's init to end: by its shutdown command,
// run inside for at most timeout, or when it has none or that fails, by its
// stop signal.
func (st *State) askToStop(pidfd int, timeout time.Duration) error {
	if len(st.Spec.Shutdown) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		code, err := Exec(ctx, st.Dir, st.Spec.Shutdown, ExecOptions{})
		cancel()
		if err == nil && code == 0 {
			return nil
		}
	}
	sig, err := st.Spec.stopSignal()
	if err != nil {
		return err
	}
	if !catchesOnceStarted(st.Pid, sig, st.commandStarted()) {
		// The kernel drops it: a command run as PID 1 (sleep, a
		// shell) would not end before the timeout.
		sig = unix.SIGKILL
	}
	return signalInit(pidfd, st.Pid, sig)
}

// commandStarted is about when the container's init executed its command:
// when the supervisor recorded its pid, which it does once the init says
// it is about to (zero when unknown). The init's own start is earlier by
// the container's setup, which a loaded host can make last seconds.
func (st *State) commandStarted() time.Time {
	fi, err := os.Stat(filepath.Join(st.Dir, pidFile))
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}

// How stop tells whether a container's PID 1 takes its stop signal. A
// process that blocks it and reads it from a signalfd (systemd) takes it,
// whatever its age. Otherwise a command has startGrace after its start to
// set up its handlers; past it, a signal blocked without a handler counts
// only when blockedLooks looks, signalLook apart, find it blocked: dash
// blocks every signal for the moment it vforks a command, and a signal
// sent then is dropped once it unblocks (PID 1, default action), so that
// the stop would wait out its timeout.
const (
	startGrace   = time.Second
	blockedLooks = 3
	signalLook   = 10 * time.Millisecond
)

// catchesOnceStarted reports whether process pid takes sig: it has a
// handler for it, reads it from a signalfd, or keeps it blocked. Until
// startGrace after its start, and after commandStarted when that is later
// (not zero), only a handler or a signalfd counts, and they are waited
// for: a stop right after a start (restart, then stop) would otherwise
// find a shell before its trap, or in a vfork before it, and kill it or
// send a signal it drops. A process /proc cannot say this of is sent the
// signal.
func catchesOnceStarted(pid int, sig unix.Signal, commandStarted time.Time) bool {
	started := time.Now() // when its grace ends: at once, if /proc cannot say
	if age, err := processAge(pid); err == nil {
		started = started.Add(startGrace - age)
	}
	if later := commandStarted.Add(startGrace); later.After(started) {
		started = later
	}
	blocked := 0 // looks in a row that found sig blocked, once started
	for {
		caught, blocks, err := signalDisposition(pid, sig)
		if err != nil || caught || blocks && readsFromSignalfd(pid, sig) {
			return true
		}
		if !time.Now().Before(started) {
			if !blocks {
				return false
			}
			if blocked++; blocked == blockedLooks {
				return true
			}
		}
		time.Sleep(signalLook)
	}
}

// processAge is how long process pid has run: /proc/uptime less its start
// time in /proc/PID/stat (clock ticks of 1/100 s, what /proc reports on
// Linux whatever the kernel's HZ).
func processAge(pid int) (time.Duration, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The fields after the command's name, which may hold anything:
	// state is field 3, starttime field 22.
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	if len(f) < 20 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	ticks, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: start time: %w", pid, err)
	}
	up, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return 0, err
	}
	return ageAt(string(up), ticks)
}

// ageAt is the age of a process started at ticks (1/100 s since boot) when
// /proc/uptime reads uptime. It counts in whole ticks: both count the same
// clock floored to a tick, and the uptime is read later; in nanoseconds
// from a float, a process started in the tick of the reading came out 1 ns
// old before its start (uptime 4.06 is 4.0599999... s).
func ageAt(uptime string, ticks uint64) (time.Duration, error) {
	secs, err := strconv.ParseFloat(strings.Fields(uptime + " 0")[0], 64)
	if err != nil {
		return 0, fmt.Errorf("/proc/uptime: %w", err)
	}
	return time.Duration(math.Round(secs*100)-float64(ticks)) * 10 * time.Millisecond, nil
}

// signalDisposition reports whether process pid has a handler for sig,
// and whether it blocks it (SigCgt and SigBlk in /proc/PID/status). A
// container's PID 1 gets no other signal from outside its PID namespace
// but SIGKILL and SIGSTOP when it has neither: the kernel protects a
// namespace's init from their default action.
func signalDisposition(pid int, sig unix.Signal) (caught, blocked bool, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false, false, err
	}
	found := 0
	for _, line := range strings.Split(string(data), "\n") {
		key, hex, _ := strings.Cut(line, ":")
		if key != "SigCgt" && key != "SigBlk" {
			continue
		}
		has, err := maskHas(hex, sig)
		if err != nil {
			return false, false, fmt.Errorf("/proc/%d/status: %s: %w", pid, key, err)
		}
		if key == "SigCgt" {
			caught = has
		} else {
			blocked = has
		}
		found++
	}
	if found < 2 {
		return false, false, fmt.Errorf("/proc/%d/status: no SigCgt and SigBlk", pid)
	}
	return caught, blocked, nil
}

// readsFromSignalfd reports whether process pid has a signalfd for sig
// (its fdinfo's sigmask).
func readsFromSignalfd(pid int, sig unix.Signal) bool {
	fdDir := fmt.Sprintf("/proc/%d/fd", pid)
	fds, err := os.ReadDir(fdDir)
	if err != nil {
		return false
	}
	for _, fd := range fds {
		if target, err := os.Readlink(filepath.Join(fdDir, fd.Name())); err != nil || target != "anon_inode:[signalfd]" {
			continue
		}
		info, err := os.ReadFile(fmt.Sprintf("/proc/%d/fdinfo/%s", pid, fd.Name()))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(info), "\n") {
			if hex, ok := strings.CutPrefix(line, "sigmask:"); ok {
				if has, err := maskHas(hex, sig); err == nil && has {
					return true
				}
			}
		}
	}
	return false
}

// maskHas reports whether the signal mask hex, as /proc shows one, has sig.
func maskHas(hex string, sig unix.Signal) (bool, error) {
	mask, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
	return mask&(1<<(uint(sig)-1)) != 0, err
}

// signalInit sends sig to the container's init; one that has just exited
// is no error.
func signalInit(pidfd, pid int, sig unix.Signal) error {
	if err := unix.PidfdSendSignal(pidfd, sig, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("failed to signal container init %d: %w", pid, err)
	}
	return nil
}

// Kill sends sig to the init of the running container of state directory
// dir: a command's init passes it on to the command; a booted container's
// init is its own. It fails with ErrNotRunning when the container does not
// run.
func Kill(dir string, sig unix.Signal) error {
	st, err := LoadState(dir)
	if err != nil {
		return err
	}
	if !st.Running {
		return ErrNotRunning
	}
	pidfd, err := unix.PidfdOpen(st.Pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return ErrNotRunning
	}
	if err != nil {
		return fmt.Errorf("failed to open container init %d: %w", st.Pid, err)
	}
	defer unix.Close(pidfd)
	return signalInit(pidfd, st.Pid, sig)
}

// waitPidfd waits until the process of pidfd exits or timeout passes (a
// negative timeout waits forever), and reports whether it exited.
func waitPidfd(pidfd int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		ms := -1
		if timeout >= 0 {
			ms = int(time.Until(deadline).Milliseconds())
			if ms < 0 {
				ms = 0
			}
		}
		fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, ms)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return err == nil && n > 0
	}
}

// waitUnlocked waits until the supervisor of dir releases its lock, which it
// does after recording the exit status and removing the cgroups.
func waitUnlocked(dir string) error {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("failed to open state lock: %w", err)
	}
	defer f.Close()
	if err := setLock(f, unix.F_RDLCK, true); err != nil {
		return fmt.Errorf("failed to wait for container supervisor: %w", err)
	}
	return nil
}
