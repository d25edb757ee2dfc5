package runtime

import (
	"context"
	"fmt"
	"io"
	"os"
	goruntime "runtime"

	"golang.org/x/sys/unix"
)

// ExecOptions are the settings of a command run in a running container by
// [Exec]. Zero values take the container's settings.
type ExecOptions struct {
	// Env is added to the container's environment, replacing the
	// variables it sets.
	Env []string
	// Workdir is the working directory; default the container's.
	Workdir string
	// User and Group, when not nil, replace the container's uid and gid.
	User, Group *uint32
	// Terminal runs the command on a new pseudo-terminal of the
	// container's devpts, relayed as for [Spec.Terminal].
	Terminal bool
	// Stdin, Stdout and Stderr are the command's streams, relayed through
	// pipes as for [Spec.Stdin]; nil is /dev/null.
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// execConfig is what Exec sends to its helper.
type execConfig struct {
	Pid      int      `json:"pid"`
	Args     []string `json:"args"`
	Env      []string `json:"env"`
	Workdir  string   `json:"workdir"`
	User     uint32   `json:"user"`
	Group    uint32   `json:"group"`
	Terminal bool     `json:"terminal"`
	// NoNewPrivileges is the container's [Spec.NoNewPrivileges].
	NoNewPrivileges bool `json:"noNewPrivileges,omitempty"`
	// Boot says the container is booted: the command gets its
	// capabilities.
	Boot bool `json:"boot,omitempty"`
}

// execNamespaces are joined in this order; the mount namespace comes last, as
// the others are opened through the host's /proc.
var execNamespaces = []struct {
	name string
	flag int
}{
	{"cgroup", unix.CLONE_NEWCGROUP}, {"ipc", unix.CLONE_NEWIPC}, {"uts", unix.CLONE_NEWUTS},
	{"net", unix.CLONE_NEWNET}, {"pid", unix.CLONE_NEWPID}, {"mnt", unix.CLONE_NEWNS},
}

// Exec runs args in the running container of state directory dir and returns
// its exit code (128+n when signal n killed it). The command joins all the
// container's namespaces and cgroups and gets the same capability limits as
// the container's own command. Signals are forwarded as [Run] does. It fails
// with ErrNotRunning when the container does not run.
func Exec(ctx context.Context, dir string, args []string, opts ExecOptions) (int, error) {
	if len(args) == 0 || args[0] == "" {
		return -1, fmt.Errorf("%w: no command", ErrInvalidSpec)
	}
	st, err := LoadState(dir)
	if err != nil {
		return -1, err
	}
	if !st.Running {
		return -1, fmt.Errorf("exec in %s: %w", dir, ErrNotRunning)
	}
	cfg := &execConfig{
		Pid: st.Pid, Args: args, Env: MergeEnv(st.Spec.commandEnv(), opts.Env),
		Workdir: st.Spec.Workdir, User: st.Spec.User, Group: st.Spec.Group,
		Terminal: opts.Terminal, NoNewPrivileges: st.Spec.NoNewPrivileges, Boot: st.Spec.Boot,
	}
	if opts.Workdir != "" {
		cfg.Workdir = opts.Workdir
	}
	if opts.User != nil {
		cfg.User = *opts.User
	}
	if opts.Group != nil {
		cfg.Group = *opts.Group
	}
	var cg *cgroup
	if st.Spec.CgroupName != "" {
		if cg, err = openCgroup(cgroupRoot, st.Spec.CgroupName, st.Spec.Boot); err != nil {
			return -1, fmt.Errorf("failed to find the cgroups of container init %d: %w", st.Pid, err)
		}
	}
	filter, err := seccompFilter(st.Spec.Seccomp, st.Spec.capabilities())
	if err != nil {
		return -1, err
	}
	cmd := newHelperCmd("acetate-exec", execArg)
	cmd.SysProcAttr.Setsid = true
	cmd.SysProcAttr.Pdeathsig = unix.SIGKILL
	if !opts.Terminal {
		if err := relayStreams(cmd, opts.Stdin, opts.Stdout, opts.Stderr); err != nil {
			return -1, err
		}
	}
	// The command's pid, in the ready report, is needed to kill it on
	// cancel: wait for it.
	msg := message{Exec: cfg, Filter: filterBytes(filter)}
	p, err := startHelper(cmd, msg, cg, cg != nil, true, opts.Terminal, opts.Stdin, opts.Stdout)
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", dir, err)
	}
	// On cancel, kill the command: the helper then reaps it and exits
	// with 137.
	code, err := p.supervise(ctx, true, p.killCommand)
	if ctx.Err() != nil {
		return code, fmt.Errorf("exec killed: %w", ctx.Err())
	}
	return code, err
}

// execMain is the exec helper: it joins the namespaces of a container's init
// on its locked thread and runs the command from there.
func execMain() {
	goruntime.LockOSThread()
	sock := helperSocket()
	m, _, err := recvMessage(sock, 0)
	if err != nil || m.Exec == nil {
		fatalf(sock, "exec: no config: %v", err)
	}
	cfg := m.Exec
	fwd := startSignalForwarder()
	fds := make([]int, len(execNamespaces))
	for i, ns := range execNamespaces {
		p := fmt.Sprintf("/proc/%d/ns/%s", cfg.Pid, ns.name)
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			fatalf(sock, "exec: failed to open namespace %s: %v", p, err)
		}
		fds[i] = fd
	}
	// A thread can change its mount namespace only when it shares its
	// root and working directory with no other thread.
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		fatalf(sock, "exec: failed to unshare file system attributes: %v", err)
	}
	for i, ns := range execNamespaces {
		if err := unix.Setns(fds[i], ns.flag); err != nil {
			fatalf(sock, "exec: failed to join %s namespace of pid %d: %v", ns.name, cfg.Pid, err)
		}
		unix.Close(fds[i])
	}
	p := commandProcess{
		args: cfg.Args, env: cfg.Env, dir: cfg.Workdir,
		uid: cfg.User, gid: cfg.Group, terminal: cfg.Terminal,
		signals: fwd, awaitJoin: m.AwaitJoin, awaited: m.Awaited,
		filter: m.Filter, noNewPrivs: cfg.NoNewPrivileges,
		caps: (&Spec{Boot: cfg.Boot}).capabilities(),
	}
	os.Exit(p.run(sock))
}
