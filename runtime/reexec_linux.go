package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	goruntime "runtime"
	"syscall"

	"golang.org/x/sys/unix"
	"os"
)

// The helpers are selected by os.Args[1] of the re-executed binary.
const (
	initArg       = "__acetate_init"       // the container's PID 1
	execArg       = "__acetate_exec"       // joins a running container and runs a command
	supervisorArg = "__acetate_supervisor" // runs detached containers (see supervisor)
)

// helperSockFd is the file descriptor on which a helper finds its control
// socket (the first of exec.Cmd.ExtraFiles).
const helperSockFd = 3

// init keeps the main goroutine of a helper on the main thread, the thread
// group leader: a helper changes namespaces, capabilities and creds on the
// thread that runs InitMain, and what /proc/<pid>/ns/* shows (which Exec
// joins) is the leader's. Package initialization runs on the main thread
// with the goroutine locked there; taking a lock of our own here keeps it
// there through main.
func init() {
	if len(os.Args) > 1 && (os.Args[1] == initArg || os.Args[1] == execArg) {
		goruntime.LockOSThread()
	}
}

// InitMain runs the package's helper processes. The binary that uses this
// package must call it at the start of main (a test binary: in TestMain,
// before m.Run). It returns at once, doing nothing, in an ordinary process;
// in a process that the package started as a helper it does that helper's
// job and never returns.
//
// The helper is chosen by os.Args[1] ("__acetate_init", "__acetate_exec" or
// "__acetate_supervisor"), and it reads its instructions from a socket (on
// file descriptor 3, or the supervisor's in the directory os.Args[2]); it
// is not meant to be started by hand. Package init functions
// of the binary run before InitMain: keep them cheap, they delay every
// container start.
func InitMain() {
	if len(os.Args) < 2 {
		return
	}
	switch os.Args[1] {
	case initArg, execArg, supervisorArg:
		// Helpers allocate little; sampling their allocations (a 1 MiB
		// control buffer is always sampled) only costs start time.
		goruntime.MemProfileRate = 0
	default:
		return
	}
	switch os.Args[1] {
	case initArg:
		initMain()
	case execArg:
		execMain()
	case supervisorArg:
		supervisorMain()
	}
	os.Exit(125) // not reached: each helper exits by itself
}

// message is what crosses a control socket, one JSON object per datagram.
type message struct {
	// Spec is sent by the parent to an init helper, and by Start to the
	// supervisor, with the state directory's lock.
	Spec *Spec `json:"spec,omitempty"`
	// Exec is sent by the parent to an exec helper.
	Exec *execConfig `json:"exec,omitempty"`
	// Filter is the compiled seccomp filter (see seccompFilter) for the
	// command of an init or exec helper, as raw sock_filter structs.
	Filter []byte `json:"filter,omitempty"`
	// PTY says the datagram carries the pty master as SCM_RIGHTS.
	PTY bool `json:"pty,omitempty"`
	// PTYName names a booted container's pty: "console" or "ttyN"
	// (empty for the terminal of a command).
	PTYName string `json:"ptyName,omitempty"`
	// AwaitJoin tells the helper that its parent moves it into the
	// container's cgroups, and that it must wait for Joined before it forks
	// the command.
	AwaitJoin bool `json:"awaitJoin,omitempty"`
	// Awaited says the parent waits for Ready before it returns to its
	// caller (Start, Exec, a Run that records state): the helper then
	// catches signals before it forks the command, so a Stop right after
	// Start reaches the command.
	Awaited bool `json:"awaited,omitempty"`
	// Joined says the helper is in the container's cgroups.
	Joined bool `json:"joined,omitempty"`
	// Ready says setup succeeded and the command is being started.
	Ready bool `json:"ready,omitempty"`
	// AwaitGo, with Ready, says a booted container's init waits for Go
	// before it executes the root's init; Go is that word.
	AwaitGo bool `json:"awaitGo,omitempty"`
	Go      bool `json:"go,omitempty"`
	// Accepted says the supervisor has taken the container (and its lock).
	Accepted bool `json:"accepted,omitempty"`
	// Pid is the container init's host pid (supervisor to Start).
	Pid int `json:"pid,omitempty"`
	// Error is a setup failure.
	Error string `json:"error,omitempty"`
}

// execsCommand reports whether m starts an init that executes the
// container's command in its place (neither a booted container's nor
// acetate's own init, Spec.Init).
func (m message) execsCommand() bool {
	return m.Spec != nil && !m.Spec.Boot && !m.Spec.Init
}

// maxMessage bounds one control datagram; the kernel's limit for a unix
// datagram is about the socket's send buffer (208 KiB by default).
const maxMessage = 256 << 10

func socketPair() (parent, child *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to create control socket: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "control"), os.NewFile(uintptr(fds[1]), "control"), nil
}

// sendMessage sends m, with fd attached when fd >= 0.
func sendMessage(sock *os.File, m message, fd int) error {
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	var oob []byte
	if fd >= 0 {
		oob = unix.UnixRights(fd)
	}
	for {
		err = unix.Sendmsg(int(sock.Fd()), data, oob, nil, 0)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("failed to send control message: %w", err)
	}
	return nil
}

// errClosed is returned by recvMessage when the peer closed the socket.
var errClosed = errors.New("control socket closed")

// recvMessage receives one message and the file descriptor attached to it,
// or -1. flags are recvmsg flags, such as MSG_DONTWAIT.
func recvMessage(sock *os.File, flags int) (message, int, error) {
	buf := make([]byte, peekSize(sock, flags))
	oob := make([]byte, unix.CmsgSpace(4))
	var n, oobn int
	var err error
	reset := false
	for {
		n, oobn, _, _, err = unix.Recvmsg(int(sock.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC|flags)
		if errors.Is(err, unix.ECONNRESET) && !reset {
			// The peer exited with one of our messages unread. The
			// kernel reports that once, ahead of what the peer sent
			// before it exited (a helper's setup error): read on,
			// without waiting, to get that.
			reset, flags = true, flags|unix.MSG_DONTWAIT
			continue
		}
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if reset && (err != nil || n == 0) {
		return message{}, -1, errClosed
	}
	if err != nil {
		return message{}, -1, fmt.Errorf("failed to receive control message: %w", err)
	}
	if n == 0 && oobn == 0 {
		return message{}, -1, errClosed
	}
	fd := -1
	if oobn > 0 {
		cmsgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err == nil && len(cmsgs) > 0 {
			if fds, err := unix.ParseUnixRights(&cmsgs[0]); err == nil && len(fds) > 0 {
				fd = fds[0]
				for _, extra := range fds[1:] {
					unix.Close(extra)
				}
			}
		}
	}
	var m message
	if err := json.Unmarshal(buf[:n], &m); err != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		return message{}, -1, fmt.Errorf("bad control message: %w", err)
	}
	return m, fd, nil
}

// peekSize waits for the next datagram on sock and returns its size (at
// least 1, at most maxMessage), so that a process that lives as long as
// its containers (the supervisor) does not leave a maxMessage buffer of
// garbage on its heap for each message.
func peekSize(sock *os.File, flags int) int {
	for {
		n, _, err := unix.Recvfrom(int(sock.Fd()), nil, unix.MSG_PEEK|unix.MSG_TRUNC|flags)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil || n <= 0 || n > maxMessage:
			return maxMessage // the real receive says what went wrong
		}
		return n
	}
}

// helperSocket returns the control socket of a helper process and marks it
// close-on-exec, so the container's command never inherits it.
func helperSocket() *os.File {
	unix.CloseOnExec(helperSockFd)
	return os.NewFile(helperSockFd, "control")
}

// fatalf reports a setup failure to the parent and exits.
func fatalf(sock *os.File, format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	if sock == nil || sendMessage(sock, message{Error: msg}, -1) != nil {
		fmt.Fprintln(os.Stderr, "acetate:", msg)
	}
	os.Exit(125)
}

// newHelperCmd returns a command re-executing this binary as a helper, with
// argv[0] naming it (as ps shows it) and an environment of only Go runtime
// settings that make it start faster: one P (helpers mostly wait; with more,
// idle threads spin looking for work to steal, tens of context switches per
// start), set explicitly, which also spares the runtime reading
// /proc/self/cgroup and mountinfo to derive it.
func newHelperCmd(argv0, arg string) *exec.Cmd {
	return &exec.Cmd{
		Path: "/proc/self/exe",
		Args: []string{argv0, arg},
		Env: []string{
			"GOMAXPROCS=1",
			"GODEBUG=updatemaxprocs=0",
		},
		SysProcAttr: &syscall.SysProcAttr{},
	}
}
