package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// cgroupRemoveWait bounds how long the removal of a container's cgroups waits
// for exiting processes to leave them.
const cgroupRemoveWait = 10 * time.Second

// Run runs the container described by spec in the foreground and returns the
// command's exit code: its exit status, or 128+n when signal n killed it. The
// command's standard streams are spec.Stdin, spec.Stdout and spec.Stderr (or
// a pseudo-terminal relayed to them, with spec.Terminal). SIGINT, SIGTERM,
// SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 received by the caller are forwarded
// to the command while it runs.
//
// When ctx is done the container is killed (every process in it) and Run
// returns 137 with ctx's error. An error with exit code -1 means the
// container could not be started; with a code of 0 or more, that it ran but
// was killed or not cleaned up (its cgroups could not be removed). With spec.StateDir set the
// container is visible to [Exec], [Stop] and [LoadState] while it runs, and
// its exit status is recorded there as [Start] does.
func Run(ctx context.Context, spec Spec) (int, error) {
	if err := spec.validate(); err != nil {
		return -1, err
	}
	var sd *stateDir
	if spec.StateDir != "" {
		var err error
		if sd, err = lockStateDir(spec.StateDir); err != nil {
			return -1, err
		}
		defer sd.close()
	}
	if err := spec.prepareBoot(); err != nil {
		return -1, err
	}
	if sd != nil {
		if err := sd.prepare(&spec); err != nil {
			return -1, err
		}
	}
	code, err := run(ctx, &spec, runOptions{forwardSignals: true, state: sd})
	if sd != nil && code >= 0 {
		if werr := sd.writeExit(code); werr != nil && err == nil {
			err = werr
		}
	}
	return code, err
}

// runOptions are the differences between a foreground Run and the
// supervisor of a detached container.
type runOptions struct {
	// forwardSignals relays the caller's signals to the container.
	forwardSignals bool
	// state, when set, receives the init's pid once started.
	state *stateDir
	// started is called with the init's host pid once it is running.
	started func(pid int)
	// consoleLog receives a booted container's console output (the
	// container's log); without, the console is attached to the spec's
	// streams.
	consoleLog io.Writer
}

// run creates the cgroups, starts init, attaches the streams, waits, and
// removes the cgroups.
func run(ctx context.Context, spec *Spec, opts runOptions) (code int, err error) {
	var cg *cgroup
	if spec.CgroupName != "" {
		if cg, err = createCgroup(cgroupRoot, spec.CgroupName, spec.Limits, spec.Boot); err != nil {
			return -1, err
		}
		defer func() {
			if opts.state != nil {
				opts.state.oomKilled = cg.oomKills() > 0
			}
			if rerr := cg.remove(cgroupRemoveWait); rerr != nil && err == nil {
				err = rerr
			}
		}()
	}
	// Only a caller that needs the container running before it ends
	// waits for its init to report the command started.
	p, err := startInit(spec, cg, opts.state != nil || opts.started != nil)
	if err != nil {
		return -1, err
	}
	if opts.state != nil {
		if err := opts.state.writePid(p.cmd.Process.Pid); err != nil {
			p.kill()
			p.wait()
			return -1, err
		}
	}
	if spec.Boot {
		stop, err := serveConsoles(spec, p.consoles, opts.consoleLog)
		if err != nil {
			p.kill()
			p.wait()
			return -1, err
		}
		defer stop()
		if err := p.goOn(); err != nil {
			p.kill()
			p.wait()
			return -1, err
		}
	}
	if opts.started != nil {
		opts.started(p.cmd.Process.Pid)
	}
	code, err = p.supervise(ctx, opts.forwardSignals, p.kill)
	if spec.Boot {
		code = bootExit(code)
	}
	if ctx.Err() != nil {
		return code, fmt.Errorf("container killed: %w", ctx.Err())
	}
	return code, err
}

// initProcess is a started helper (a container's init, or an exec helper),
// seen from its parent.
type initProcess struct {
	cmd   *exec.Cmd
	relay *ptyRelay
	// sock is the control socket, kept when the helper's report is read
	// later rather than at start (see startHelper and report).
	sock       *os.File
	reportOnce sync.Once
	reportErr  error
	// cmdPid is the host pid of an exec helper's command, as the helper
	// reported it (an init reports none: its command's pid is in the
	// container's PID namespace, or its own).
	cmdPid int
	// consoles are a booted container's pty masters, by name.
	consoles map[string]*os.File
	// awaitsGo is the control socket of a booted container's init that
	// waits for go before it executes the root's init (see goOn).
	awaitsGo *os.File
}

// goOn tells a booted container's init, which waits for it, that its
// consoles are held and read: from now on what the OS writes there is
// kept (a getty's vhangup would otherwise discard the boot's first lines
// before anyone read them).
func (p *initProcess) goOn() error {
	if p.awaitsGo == nil {
		return nil
	}
	defer p.awaitsGo.Close()
	return sendMessage(p.awaitsGo, message{Go: true}, -1)
}

// startInit re-executes the binary as the container's init and starts it
// (see startHelper). The init is placed in cg (when not nil) before it forks
// the command.
func startInit(spec *Spec, cg *cgroup, waitReady bool) (*initProcess, error) {
	flags := uintptr(unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC)
	if spec.Network != NetworkHost && spec.NetNS == "" {
		flags |= unix.CLONE_NEWNET
	}
	filter, err := seccompFilter(spec.Seccomp, spec.capabilities())
	if err != nil {
		return nil, err
	}
	cmd := newHelperCmd("acetate-init", initArg)
	cmd.SysProcAttr.Cloneflags = flags
	// A session of its own: the caller's terminal signals reach the
	// container only through forwarding.
	cmd.SysProcAttr.Setsid = true
	cmd.SysProcAttr.Pdeathsig = unix.SIGKILL
	if !spec.Terminal {
		if err := relayStreams(cmd, spec.Stdin, spec.Stdout, spec.Stderr); err != nil {
			return nil, err
		}
	}
	msg := message{Spec: spec, Filter: filterBytes(filter)}
	// acetate's init (Spec.Init) leaves the container's cgroups once the
	// command runs (see leave); an init that executes the command or the
	// root's own init in its place stays.
	leave := cg != nil && spec.Init
	return startHelper(cmd, msg, cg, leave, waitReady || spec.Terminal || spec.Boot, spec.Terminal, spec.Stdin, spec.Stdout)
}

// relayStreams gives the helper cmd standard streams that this process
// relays to and from stdin, stdout and stderr: pipes, never the caller's own
// descriptors. A descriptor in the container can be reopened through
// /proc/self/fd/N, which opens the file it names anew, for writing too: the
// caller's stdout file (a log that "run ... >>ops.log" appends to) could be
// read and truncated from inside, its stdin file rewritten.
//
// Stdin is copied by a goroutine that ends at its end of file or at the
// first write after the container closed the pipe: a read in progress when
// the container ends is not interrupted, and its data is dropped. Nil
// streams and io.Discard are /dev/null. Stdout and stderr are drained
// until every process holding them has exited, for at most a second after
// the helper exits.
func relayStreams(cmd *exec.Cmd, stdin io.Reader, stdout, stderr io.Writer) error {
	if sameFile(stdout, stderr) {
		// "run ... >log 2>&1": one pipe keeps the order of the lines.
		stderr = stdout
	}
	cmd.Stdout, cmd.Stderr = relayed(stdout), relayed(stderr)
	cmd.WaitDelay = time.Second
	if stdin == nil {
		return nil
	}
	// exec.Cmd would copy stdin itself, and wait for the copy to end: on
	// a terminal, until the next keystroke.
	pr, pw, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("failed to make stdin pipe: %w", err)
	}
	cmd.Stdin = pr // closed once cmd has started: see startHelper
	go func() {
		io.Copy(pw, stdin)
		pw.Close()
	}()
	return nil
}

// sameFile reports whether a and b are descriptors of the same file.
func sameFile(a, b io.Writer) bool {
	fa, ok := a.(*os.File)
	fb, ok2 := b.(*os.File)
	if !ok || !ok2 {
		return false
	}
	var sa, sb unix.Stat_t
	return unix.Fstat(int(fa.Fd()), &sa) == nil && unix.Fstat(int(fb.Fd()), &sb) == nil &&
		sa.Dev == sb.Dev && sa.Ino == sb.Ino
}

// relayed returns w as exec.Cmd must see it to give the helper a pipe and
// copy from it: a writer that is not an *os.File. io.Discard becomes nil,
// which exec.Cmd turns into /dev/null.
func relayed(w io.Writer) io.Writer {
	switch w.(type) {
	case nil:
		return nil
	case *os.File:
		return struct{ io.Writer }{w}
	}
	if w == io.Discard {
		return nil
	}
	return w
}

// startHelper starts cmd with msg waiting on its control socket (queued
// before the start, so the helper need not wait for this process to be
// scheduled again), moves it into cg and tells it so (it waits for that
// before forking its command, and sets up the container meanwhile).
//
// With waitReady it then waits until the helper reports that the command is
// started, or its setup error. Without, it returns at once, and the report is
// read later (see report): before the first signal is relayed, or when the
// helper has exited. That is a start with one hand-off between the processes
// fewer, for callers that need no running container before it ends. With terminal it receives the pty master (waitReady is
// then needed) and relays it to stdin and stdout.
func startHelper(cmd *exec.Cmd, msg message, cg *cgroup, leave, waitReady, terminal bool, stdin io.Reader, stdout io.Writer) (*initProcess, error) {
	// A helper that leaves, or that executes the command in its place,
	// counts against the pids limit only until then: the limit is raised
	// for its threads meanwhile (see allowHelper), and put back once it
	// reports Ready (and has left), or has executed the command.
	raise := cg != nil && (leave || msg.execsCommand())
	waitReady = waitReady || raise
	parentSock, childSock, err := socketPair()
	if err != nil {
		return nil, err
	}
	if cg != nil {
		msg.AwaitJoin = true
	}
	msg.Awaited = waitReady
	if err := sendMessage(parentSock, msg, -1); err != nil {
		parentSock.Close()
		childSock.Close()
		return nil, err
	}
	cmd.ExtraFiles = []*os.File{childSock}
	err = cmd.Start()
	childSock.Close()
	if f, ok := cmd.Stdin.(*os.File); ok {
		f.Close() // the helper's end of relayStreams' stdin pipe
	}
	if err != nil {
		parentSock.Close()
		return nil, fmt.Errorf("failed to start %s: %w", cmd.Args[0], err)
	}
	p := &initProcess{cmd: cmd, sock: parentSock, consoles: map[string]*os.File{}}
	fail := func(err error) (*initProcess, error) {
		p.kill()
		p.wait()
		for _, f := range p.consoles {
			f.Close()
		}
		return nil, err
	}
	restore := func() error { return nil }
	if cg != nil {
		if raise {
			unlock, err := cg.lockPids()
			if err != nil {
				return fail(err)
			}
			defer unlock()
		}
		if err := cg.join(cmd.Process.Pid); err != nil {
			return fail(err)
		}
		if raise {
			if restore, err = cg.allowHelper(cmd.Process.Pid); err != nil {
				return fail(err)
			}
			defer func() {
				if restore != nil && restore() != nil {
					p.kill() // never leave a container above its limit
				}
			}()
		}
		if err := sendMessage(parentSock, message{Joined: true}, -1); err != nil {
			return fail(setupError(parentSock, err))
		}
	}
	if !waitReady {
		return p, nil
	}
	p.reportOnce.Do(func() {}) // read here, not by report
	defer func() {
		if p.sock != p.awaitsGo {
			parentSock.Close()
		}
	}()
	for {
		m, fd, err := recvMessage(parentSock, 0)
		if errors.Is(err, errClosed) {
			return fail(fmt.Errorf("%s exited during setup (does the binary call runtime.InitMain first in main?)", cmd.Args[0]))
		}
		if err != nil {
			return fail(err)
		}
		switch {
		case m.Error != "":
			return fail(fmt.Errorf("failed to start container: %s", m.Error))
		case m.PTY && fd >= 0 && m.PTYName != "":
			p.consoles[m.PTYName] = os.NewFile(uintptr(fd), m.PTYName)
		case m.PTY && fd >= 0:
			if !terminal {
				unix.Close(fd)
				continue
			}
			p.relay = startPTYRelay(os.NewFile(uintptr(fd), "pty-master"), stdin, stdout)
		case m.Ready:
			p.cmdPid = m.Pid
			if m.AwaitGo {
				p.awaitsGo = parentSock
			}
			if raise && !leave {
				// Its end of the socket closes as it executes the
				// command (or exits).
				awaitClose(parentSock)
			}
			if raise {
				// The limit first, while the helper still counts,
				// so the command never passes it.
				err := restore()
				if restore = nil; err != nil {
					return fail(err)
				}
			}
			if leave {
				if err := cg.leave(cmd.Process.Pid); err != nil {
					return fail(err)
				}
			}
			return p, nil
		}
	}
}

// awaitExit returns once process pid, a child, has exited, without
// holding an OS thread meanwhile (Go's wait does, in waitid): the
// supervisor waits for the inits of hundreds of containers at once. The
// child is left to reap.
func awaitExit(pid int) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return // reaped already, or no pidfd: the wait that follows waits
	}
	f := os.NewFile(uintptr(fd), "pidfd") // non-blocking: on Go's poller
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	rc.Read(func(uintptr) bool {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 0)
		return err != nil || n > 0
	})
}

// awaitClose reads sock until the helper's end of it is closed.
func awaitClose(sock *os.File) {
	for {
		_, fd, err := recvMessage(sock, 0)
		if fd >= 0 {
			unix.Close(fd)
		}
		if err != nil {
			return
		}
	}
}

// setupError is the error a helper reported on sock before it exited,
// when there is one, rather than err, what a send to it failed with (a
// broken pipe says nothing of why).
func setupError(sock *os.File, err error) error {
	for {
		m, fd, rerr := recvMessage(sock, unix.MSG_DONTWAIT)
		if fd >= 0 {
			unix.Close(fd)
		}
		switch {
		case rerr != nil:
			return err
		case m.Error != "":
			return fmt.Errorf("failed to start container: %s", m.Error)
		}
	}
}

// report returns what the helper reported on the control socket when
// startHelper did not wait for it: nil once it has started its command and
// caught the signals it forwards, else its setup error. It blocks until the
// helper reports or exits, and reads the socket once (a concurrent caller
// waits for the first).
func (p *initProcess) report() error {
	p.reportOnce.Do(func() {
		if p.sock == nil {
			return
		}
		defer p.sock.Close()
		for {
			m, fd, err := recvMessage(p.sock, 0)
			if fd >= 0 {
				unix.Close(fd)
			}
			switch {
			case err != nil: // closed without a report
				p.reportErr = fmt.Errorf("%s exited during setup (does the binary call runtime.InitMain first in main?)", p.cmd.Args[0])
				return
			case m.Error != "":
				p.reportErr = fmt.Errorf("failed to start container: %s", m.Error)
				return
			case m.Ready:
				return
			}
		}
	})
	return p.reportErr
}

// kill kills the helper; when it is a container's init, the kernel kills
// every process of the container with it.
func (p *initProcess) kill() { p.cmd.Process.Kill() }

// killCommand kills the helper's command, which an exec helper is not the
// init of, and the helper itself when it has reported no command.
func (p *initProcess) killCommand() {
	if p.cmdPid > 0 {
		unix.Kill(p.cmdPid, unix.SIGKILL)
		return
	}
	p.kill()
}

// wait waits for the helper to exit and returns its exit code, 128+n when
// signal n killed it.
func (p *initProcess) wait() (int, error) {
	awaitExit(p.cmd.Process.Pid)
	err := p.cmd.Wait()
	if p.relay != nil {
		p.relay.wait()
	}
	if rerr := p.report(); rerr != nil {
		return -1, rerr
	}
	if p.cmd.ProcessState == nil {
		return -1, fmt.Errorf("failed to wait for container: %w", err)
	}
	st, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok {
		return -1, fmt.Errorf("failed to wait for container: %w", err)
	}
	if st.Signaled() {
		return 128 + int(st.Signal()), nil
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) && !errors.Is(err, exec.ErrWaitDelay) {
		return st.ExitStatus(), fmt.Errorf("failed to wait for container: %w", err)
	}
	return st.ExitStatus(), nil
}
