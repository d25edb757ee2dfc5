package runtime

import (
	"errors"
	"fmt"
	"io"
	"os"
	goruntime "runtime"

	"golang.org/x/sys/unix"
)

// initMain is the container's PID 1. It is started by startInit in new
// mount, PID, UTS, IPC (and network) namespaces, finds its Spec on the
// control socket, and sets the container up while its parent places it in
// the container's cgroups. It then becomes the command (see execCommand),
// or, with Spec.Init, keeps it as its child (see commandProcess.run); a
// booted container's becomes the root's own init.
func initMain() {
	// Namespaces, capabilities and the fork of the command all act on the
	// calling thread: stay on one (the main thread, locked since init).
	goruntime.LockOSThread()
	sock := helperSocket()
	m, _, err := recvMessage(sock, 0)
	if err != nil || m.Spec == nil {
		fatalf(sock, "init: no spec: %v", err)
	}
	spec := m.Spec
	var fwd *signalForwarder
	if spec.Init {
		fwd = startSignalForwarder()
	}
	os.WriteFile("/proc/self/comm", []byte("acetate-init"), 0)
	if err := joinNetns(spec.NetNS); err != nil {
		fatalf(sock, "init: %v", err)
	}
	if err := setupRootfs(spec); err != nil {
		fatalf(sock, "init: %v", err)
	}
	if spec.Hostname != "" {
		if err := unix.Sethostname([]byte(spec.Hostname)); err != nil {
			fatalf(sock, "init: failed to set hostname: %v", err)
		}
	}
	if spec.Network != NetworkHost && spec.NetNS == "" {
		if err := loopbackUp(); err != nil {
			fatalf(sock, "init: %v", err)
		}
	}
	p := commandProcess{
		args: spec.Args, dir: spec.Workdir,
		uid: spec.User, gid: spec.Group, terminal: spec.Terminal,
		signals: fwd, awaitJoin: m.AwaitJoin, awaited: m.Awaited,
		filter: m.Filter, noNewPrivs: spec.NoNewPrivileges, caps: spec.capabilities(),
		// The cgroup namespace is made once the parent has moved us
		// into the container's cgroups, so that they are its root.
		newCgroupNS: spec.CgroupName != "", cgroupMount: spec.Boot,
	}
	if spec.Boot {
		p.env = spec.bootEnv()
		p.boot(sock, spec.TTYs)
	}
	p.env = spec.commandEnv()
	if !spec.Init {
		p.execCommand(sock)
	}
	os.Exit(p.run(sock))
}

// boot makes the container's console and ttys, sends their masters to the
// parent, enters the container's cgroups and confinement, and executes the
// root's init in place of this process, with the console as its standard
// streams: the container's PID 1 is then its own init, and nothing of
// acetate stays inside. It returns only on failure, as exit status 127
// (not found) or 126, after saying why on the console.
func (p *commandProcess) boot(sock *os.File, ttys int) {
	cons, err := openConsoles(ttys)
	if err != nil {
		fatalf(sock, "%v", err)
	}
	for i, name := range consoleNames(ttys) {
		if err := sendMessage(sock, message{PTY: true, PTYName: name}, int(cons.masters[i].Fd())); err != nil {
			fatalf(sock, "%v", err)
		}
		cons.masters[i].Close()
	}
	if err := unix.Chdir("/"); err != nil {
		fatalf(sock, "%v", err)
	}
	p.enter(sock)
	path, err := lookPath(p.args[0], envValue(p.env, "PATH"))
	con := int(cons.console.Fd())
	for fd := 0; fd <= 2; fd++ {
		if err := unix.Dup3(con, fd, 0); err != nil {
			fatalf(sock, "failed to give the init its console: %v", err)
		}
	}
	sendMessage(sock, message{Ready: true, AwaitGo: true}, -1)
	if m, _, rerr := recvMessage(sock, 0); rerr != nil || !m.Go {
		os.Exit(125) // the parent went away
	}
	sock.Close()
	if err == nil {
		err = execute(path, p.args, p.env)
	}
	execFailed("boot", p.args[0], err)
}

// execFailed says on stderr why the command could not be executed in the
// init's place, and exits as a shell does (see notRun).
func execFailed(what, name string, err error) {
	os.Exit(notRun(os.Stderr, what, name, err))
}

// notRun says on w why the command name could not be run and returns the
// exit status a shell gives then: 127 when it is not found, 126 when it
// cannot be run.
func notRun(w io.Writer, what, name string, err error) int {
	fmt.Fprintf(w, "acetate: failed to %s %q: %v\n", what, name, err)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, errNotFound) {
		return 127
	}
	return 126
}
