package runtime

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/acetate/acetate/internal/daemon"
	"github.com/acetate/acetate/internal/memtrim"
	"golang.org/x/sys/unix"
)

// The files of a supervisor, in its directory ([Spec.Supervisor]).
const (
	// supervisorSocket takes the containers to run (SOCK_SEQPACKET).
	supervisorSocket = "supervisor.sock"
	// supervisorLock is held by a Start from before it dials until the
	// supervisor has taken its container, and by the supervisor while it
	// decides to exit (see package internal/daemon).
	supervisorLock = "supervisor.lock"
	// supervisorLog receives what concerns no one container: a failed
	// request, the stack of a panic.
	supervisorLog = "supervisor.log"
)

// supervisorDir is the directory of the supervisor that runs s detached.
func (s *Spec) supervisorDir() string {
	if s.Supervisor != "" {
		return s.Supervisor
	}
	return filepath.Dir(s.StateDir)
}

// startSupervised hands the container of spec, whose state directory sd
// is locked and prepared, to the supervisor of its directory, starting
// one when none runs, and returns the init's pid once it runs. The
// supervisor takes over the lock (a descriptor of the same open file
// description, sent with the spec), so the container never looks
// stopped in between.
func startSupervised(spec *Spec, sd *stateDir) (int, error) {
	sock, err := handOver(spec.supervisorDir(), message{Spec: spec}, int(sd.lock.Fd()))
	if err != nil {
		return -1, err
	}
	defer sock.Close()
	m, _, err := recvMessage(sock, 0)
	switch {
	case errors.Is(err, errClosed):
		return -1, fmt.Errorf("the container supervisor exited while starting it (see %s)", filepath.Join(spec.supervisorDir(), supervisorLog))
	case err != nil:
		return -1, err
	case m.Error != "":
		return -1, errors.New(m.Error)
	}
	return m.Pid, nil
}

// handOver sends m and fd to the supervisor of dir, starting one when none
// listens, and returns the connection once the supervisor has accepted
// them.
func handOver(dir string, m message, fd int) (*os.File, error) {
	d, err := daemon.OpenDir(dir)
	if err != nil {
		return nil, fmt.Errorf("container supervisor: %w", err)
	}
	defer unix.Close(d)
	lock, err := daemon.Lock(d, supervisorLock)
	if err != nil {
		return nil, fmt.Errorf("container supervisor: %w", err)
	}
	defer unix.Close(lock)
	c, err := daemon.Dial(d, supervisorSocket)
	if err != nil {
		cmd := newHelperCmd("acetate-supervisor", supervisorArg)
		cmd.Args = append(cmd.Args, dir)
		cmd.Dir = "/"
		if err := daemon.Start(context.Background(), cmd); err != nil {
			return nil, fmt.Errorf("start the container supervisor: %w", err)
		}
		if c, err = daemon.Dial(d, supervisorSocket); err != nil {
			return nil, fmt.Errorf("container supervisor: %w", err)
		}
	}
	sock, err := c.File()
	c.Close()
	if err != nil {
		return nil, fmt.Errorf("container supervisor: %w", err)
	}
	if err := sendMessage(sock, m, fd); err != nil {
		sock.Close()
		return nil, err
	}
	reply, _, err := recvMessage(sock, 0)
	if err == nil && !reply.Accepted {
		err = fmt.Errorf("container supervisor: %s", reply.Error)
	}
	if err != nil {
		sock.Close()
		return nil, err
	}
	return sock, nil
}

// supervisor runs detached containers, each of them from Start to its
// end for good (its restarts included): one process for every container
// started with one Supervisor directory, where there was a monitor
// process for each (2 MiB of private memory apiece). It is the parent of
// their inits, which it starts with PR_SET_PDEATHSIG: a supervisor killed
// takes its containers with it, as a host crash would, and autostart and
// the restart policies start them again. It runs in the mount namespace
// of the Start that started it, where it finds the roots of the
// containers it starts: the containers of one directory are started from
// one mount namespace (the host's, for a store).
type supervisor struct {
	*daemon.Server
}

// supervisorBursts says when the supervisor gives back what its last burst
// of work took (a start's spec, filter and messages, the code that starts
// a container, a booting container's console and log lines): 2 seconds
// after it, not minutes later. It lives as long as its containers, idle
// between their starts and their output, and what it holds then is what
// a host of hundreds of containers pays for it.
var supervisorBursts = memtrim.Bursts{Period: 2 * time.Second, After: 256 << 10, Idle: 64 << 10}

// supervisorMain is the supervisor of the directory os.Args[2]: it serves
// Starts until it runs no container.
func supervisorMain() {
	s, l, err := listenSupervisor(os.Args[2])
	daemon.ReportReady(err)
	if err != nil {
		os.Exit(1)
	}
	memtrim.ReleaseAfterEachGC()
	go memtrim.TrimAfterBursts(context.Background(), supervisorBursts)
	s.Serve(l, s.handle)
}

// listenSupervisor sets the process up as the supervisor of dir and
// listens on its socket. The Start that started it holds the lock.
func listenSupervisor(dir string) (*supervisor, *net.UnixListener, error) {
	daemon.RaiseFileLimit()
	d, err := daemon.OpenDir(dir)
	if err != nil {
		return nil, nil, err
	}
	logFile, err := os.OpenFile(filepath.Join(dir, supervisorLog), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("container supervisor: %w", err)
	}
	// The runtime's fatal errors go to descriptor 2.
	unix.Dup2(int(logFile.Fd()), 2)
	s := &supervisor{&daemon.Server{Dir: d, Socket: supervisorSocket, LockFile: supervisorLock,
		Log: log.New(logFile, "", log.LstdFlags)}}
	l, err := daemon.Listen(d, supervisorSocket)
	if err != nil {
		return nil, nil, fmt.Errorf("container supervisor: %w", err)
	}
	return s, l, nil
}

// handle takes one container from a Start on c and runs it until it ends
// for good. A panic ends that container's supervision only.
func (s *supervisor) handle(c *net.UnixConn) {
	defer s.Leave()
	defer func() {
		if r := recover(); r != nil {
			s.Log.Printf("panic: %v\n%s", r, debug.Stack())
		}
	}()
	err := daemon.CheckPeer(c)
	sock, ferr := c.File()
	c.Close()
	if ferr != nil {
		s.Log.Printf("request: %v", ferr)
		return
	}
	defer sock.Close()
	if err != nil {
		sendMessage(sock, message{Error: err.Error()}, -1)
		return
	}
	m, fd, err := recvMessage(sock, 0)
	if err != nil || m.Spec == nil || fd < 0 {
		if fd >= 0 {
			unix.Close(fd)
		}
		sendMessage(sock, message{Error: fmt.Sprintf("bad request: %v", err)}, -1)
		return
	}
	sd := &stateDir{dir: m.Spec.StateDir, lock: os.NewFile(uintptr(fd), "lock")}
	defer sd.close()
	if err := sendMessage(sock, message{Accepted: true}, -1); err != nil {
		return // the Start is gone, and with it the container's start
	}
	supervise(m.Spec, sd, sock)
}

// supervise runs the container of spec: it reports its init's pid (or why
// it could not start) on sock, records how each run ended, and starts it
// again as its restart policy says. Its log is StateDir/log: the
// container's two streams come through two pipes, and each line becomes a
// record (see logfile.go); lines about the restarts are plain.
func supervise(spec *Spec, sd *stateDir, sock *os.File) {
	logFile, err := os.OpenFile(filepath.Join(spec.StateDir, logFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		sendMessage(sock, message{Error: fmt.Sprintf("failed to open container log: %v", err)}, -1)
		return
	}
	defer logFile.Close()
	stdout, stderr := newLogWriters(logFile)
	spec.Stdout, spec.Stderr = stdout, stderr
	started := func(pid int) {
		sendMessage(sock, message{Pid: pid}, -1)
		sock.Close()
		memtrim.Request()
	}
	var delay time.Duration
	for {
		begin := time.Now()
		code, err := run(context.Background(), spec, runOptions{state: sd, consoleLog: stdout, started: started})
		if err != nil && code < 0 {
			if started != nil {
				sendMessage(sock, message{Error: err.Error()}, -1)
				return
			}
			fmt.Fprintln(logFile, "acetate: restart:", err)
			code = 125
		}
		started = nil
		if err := errors.Join(stdout.flush(), stderr.flush()); err != nil {
			fmt.Fprintln(logFile, "acetate: write log:", err)
		}
		if err := sd.writeExit(code); err != nil {
			fmt.Fprintln(logFile, "acetate:", err)
			return
		}
		if !spec.Restart.again(code, sd.restarts) {
			return
		}
		delay = restartBackoff(delay, time.Since(begin))
		if stoppedWithin(sd.dir, delay) {
			return
		}
		sd.restarts++
	}
}

// stoppedWithin waits for d and reports whether Stop stopped the
// container of dir meanwhile, as soon as it did.
func stoppedWithin(dir string, d time.Duration) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if wasStopped(dir) {
			return true
		}
	}
	return wasStopped(dir)
}
