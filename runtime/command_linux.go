package runtime

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// commandProcess is the container command as init or an exec helper starts
// it, from a thread that is already inside the container.
type commandProcess struct {
	args     []string
	env      []string
	dir      string
	uid, gid uint32
	terminal bool
	signals  *signalForwarder
	// awaitJoin waits for the parent's Joined message before the fork.
	awaitJoin bool
	// awaited: the parent waits for Ready (see message.Awaited).
	awaited bool
	// newCgroupNS gives the command a new cgroup namespace, after the
	// join.
	newCgroupNS bool
	// filter is the compiled seccomp filter, empty for none.
	filter []byte
	// noNewPrivs sets no_new_privs on the command.
	noNewPrivs bool
	// caps is the command's capability set.
	caps []capability
	// cgroupMount mounts the new cgroup namespace's cgroup2 on
	// /sys/fs/cgroup (a booted container's).
	cgroupMount bool
}

// run starts the command, tells the parent on sock that setup is done, then
// forwards signals to the command, reaps every child, and returns the exit
// code for the helper to exit with: the command's, or 128+n when signal n
// killed it. Errors starting the command are printed on the command's stderr
// and give 127 (not found) or 126 (not executable), as a shell does.
func (p *commandProcess) run(sock *os.File) int {
	stdio := []uintptr{0, 1, 2}
	attr := &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: p.uid, Gid: p.gid, Groups: []uint32{}},
	}
	var errOut = os.Stderr
	if p.terminal {
		master, slave, err := openPTY()
		if err != nil {
			fatalf(sock, "%v", err)
		}
		if err := sendMessage(sock, message{PTY: true}, int(master.Fd())); err != nil {
			fatalf(sock, "%v", err)
		}
		master.Close()
		defer slave.Close()
		fd := slave.Fd()
		stdio = []uintptr{fd, fd, fd}
		attr.Setsid, attr.Setctty, attr.Ctty = true, true, 0
		errOut = slave
	}
	dir := p.workdir(sock)
	p.enter(sock)
	if p.awaited {
		// Signals caught before the command exists, so that a Stop
		// right after Start reaches it. Else (a foreground Run) the
		// forwarder gets ready while the command starts, and the
		// parent relays no signal before the Ready report, which is
		// sent only once it is.
		<-p.signals.ready
	}
	path, err := lookPath(p.args[0], envValue(p.env, "PATH"))
	var pid int
	if err == nil {
		pid, err = syscall.ForkExec(path, p.args, &syscall.ProcAttr{
			Dir: dir, Env: p.env, Files: stdio, Sys: attr,
		})
	}
	// The pid is the command's in this helper's pid namespace: the host's
	// for an exec helper.
	<-p.signals.ready
	sendMessage(sock, message{Ready: true, Pid: pid}, -1)
	sock.Close()
	if err != nil {
		return notRun(errOut, "run", p.args[0], err)
	}
	go p.signals.forward(pid)
	return reap(pid)
}

// execCommand makes the command the container's PID 1, in place of this
// process: it gives it the terminal, enters the container's cgroups and
// confinement, reports Ready, takes the command's user and groups and
// working directory, and executes it. Nothing of acetate stays in the
// container. It returns only on failure, as exit status 127 (not found) or
// 126, after saying why on the command's stderr. The control socket is
// closed by the exec itself (close-on-exec), which is how the parent
// learns that the helper's threads are gone (see startHelper).
func (p *commandProcess) execCommand(sock *os.File) {
	if p.terminal {
		if err := p.takeTerminal(sock); err != nil {
			fatalf(sock, "%v", err)
		}
	}
	dir := p.workdir(sock)
	p.enter(sock)
	path, err := lookPath(p.args[0], envValue(p.env, "PATH"))
	sendMessage(sock, message{Ready: true}, -1)
	if err == nil {
		err = takeCredentials(p.uid, p.gid)
	}
	if err == nil {
		err = unix.Chdir(dir)
	}
	if err == nil {
		err = execute(path, p.args, p.env)
	}
	execFailed("run", p.args[0], err)
}

// execute executes path in place of this process, with every signal at
// its default action (see resetIgnoredSignals); it returns only on failure.
func execute(path string, args, env []string) error {
	resetIgnoredSignals()
	return unix.Exec(path, args, env)
}

// workdir returns the command's working directory ("/" by default), made
// when missing, before the helper is confined.
func (p *commandProcess) workdir(sock *os.File) string {
	dir := p.dir
	if dir == "" {
		dir = "/"
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fatalf(sock, "failed to create working directory %s: %v", dir, err)
	}
	return dir
}

// takeTerminal makes a pseudo-terminal, sends its master to the parent,
// and makes the slave this process's controlling terminal (it leads a
// session of its own) and standard streams.
func (p *commandProcess) takeTerminal(sock *os.File) error {
	master, slave, err := openPTY()
	if err != nil {
		return err
	}
	defer slave.Close()
	err = sendMessage(sock, message{PTY: true}, int(master.Fd()))
	master.Close()
	if err != nil {
		return err
	}
	fd := int(slave.Fd())
	if err := unix.IoctlSetInt(fd, unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("failed to set the controlling terminal: %w", err)
	}
	for std := 0; std <= 2; std++ {
		if err := unix.Dup3(fd, std, 0); err != nil {
			return fmt.Errorf("failed to give the command its terminal: %w", err)
		}
	}
	return nil
}

// takeCredentials gives the calling thread, which executes the command
// next, the command's user and group and no supplementary group, as Go's
// fork does in the child: with raw system calls, on this thread alone
// (Go's own set them on every thread of the process, through libc's
// broadcast where cgo is linked in).
func takeCredentials(uid, gid uint32) error {
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, 0, 0, 0); e != 0 {
		return fmt.Errorf("setgroups: %w", e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(gid), uintptr(gid), uintptr(gid)); e != 0 {
		return fmt.Errorf("setresgid %d: %w", gid, e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(uid), uintptr(uid), uintptr(uid)); e != 0 {
		return fmt.Errorf("setresuid %d: %w", uid, e)
	}
	return nil
}

// enter finishes the helper's way into the container, on the thread that
// starts the command: it waits until the parent has moved it into the
// container's cgroups, makes the cgroup namespace, confines the thread
// (see confine), and marks every inherited descriptor close-on-exec.
func (p *commandProcess) enter(sock *os.File) {
	if p.awaitJoin {
		m, _, err := recvMessage(sock, 0)
		if err != nil || !m.Joined {
			fatalf(sock, "no word of the cgroup join: %v", err)
		}
	}
	if p.newCgroupNS {
		// On this thread only, which forks the command; before
		// CAP_SYS_ADMIN is dropped.
		if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
			fatalf(sock, "failed to create cgroup namespace: %v", err)
		}
		if p.cgroupMount {
			if err := mountCgroupNamespace(); err != nil {
				fatalf(sock, "%v", err)
			}
		}
	}
	if err := p.confine(); err != nil {
		fatalf(sock, "%v", err)
	}
	// Descriptors the helper inherited without close-on-exec (from its
	// caller's caller: a shell, a test harness) must not reach the
	// container: one on a host directory would be a way out of the root.
	// Go passes only stdio to the command, but leaves such descriptors
	// open across exec.
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		fatalf(sock, "failed to mark inherited descriptors close-on-exec: %v", err)
	}
}

// confine gives the calling thread, for the command it forks, a session
// keyring of its own, the seccomp filter, and the container's capabilities
// (and no_new_privs). The filter goes first, while the thread still has
// CAP_SYS_ADMIN, which loading one without no_new_privs needs.
func (p *commandProcess) confine() error {
	if err := joinNewSessionKeyring(); err != nil {
		return err
	}
	if err := loadSeccomp(filterFromBytes(p.filter)); err != nil {
		return err
	}
	return restrictProcess(p.caps, p.noNewPrivs)
}

// joinNewSessionKeyring gives the calling thread a new, empty, anonymous
// session keyring, as runc does: the caller's session keyring (an
// operator's Kerberos or ecryptfs keys, found by key id) is not possessed
// in the container, so the keys in it cannot be read there. The user
// keyring of uid 0 (@u) is not namespaced: the seccomp filter, which
// refuses keyctl, add_key and request_key, is what keeps it out of reach.
// An anonymous keyring, unlike a named one, is never found and joined by
// another container.
func joinNewSessionKeyring() error {
	_, _, errno := syscall.RawSyscall(unix.SYS_KEYCTL, unix.KEYCTL_JOIN_SESSION_KEYRING, 0, 0)
	if errno != 0 && errno != unix.ENOSYS {
		return fmt.Errorf("failed to join a new session keyring: %w", errno)
	}
	return nil
}

// reap waits for every child, orphans adopted by an init included, until
// pid exits, and returns its exit code: its status, or 128+n when signal n
// killed it.
func reap(pid int) int {
	for {
		var ws unix.WaitStatus
		got, err := unix.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 125 // no child left: cannot happen before pid is reaped
		}
		if got == pid {
			if ws.Signaled() {
				return 128 + int(ws.Signal())
			}
			return ws.ExitStatus()
		}
	}
}

// errNotFound is returned by lookPath for a command missing from PATH.
var errNotFound = errors.New("executable file not found in $PATH")

// lookPath finds file in the PATH given, the way execvp does; a name with a
// slash is used as it is.
func lookPath(file, path string) (string, error) {
	if strings.Contains(file, "/") {
		return file, nil
	}
	for _, dir := range strings.Split(path, ":") {
		if dir == "" {
			dir = "."
		}
		p := dir + "/" + file
		var st unix.Stat_t
		if unix.Stat(p, &st) == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR && st.Mode&0o111 != 0 {
			return p, nil
		}
	}
	return "", errNotFound
}
