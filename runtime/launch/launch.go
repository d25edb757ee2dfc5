// Package launch runs stored containers: it mounts a container's root when
// needed, turns the container's template config and the caller's options
// into a runtime.Spec, and keeps the launcher's state in the container's
// run directory (<root>/containers/NAME/run).
//
// A container's saved settings (container.Settings: command, env, limits,
// ...) become Options through FromSettings; a caller changes them for one
// run only by changing those Options. The command's environment starts
// with HOME, USER and SHELL from the user's entry in the container's
// /etc/passwd and, on a terminal, the caller's TERM, as docker and
// systemd-nspawn set them.
//
// A container is "created" until it first runs, "running" while its init
// lives, and "exited" after, with its exit code. A foreground Run unmounts
// the root again if it mounted it; Start leaves it mounted until Stop.
//
// A container on a bridge network (Options.Network "bridge[=NAME]") is
// attached before it starts (see package runtime/network: its network
// namespace is the run directory's netns file) and detached by Stop and
// at the end of a Run; Release frees its address when it is removed.
package launch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/acetate/acetate/fs/container"
	"github.com/acetate/acetate/runtime"
	"github.com/acetate/acetate/runtime/network"
)

// Options are how one run differs from the container's template config.
type Options struct {
	// Args replaces the template's command when not empty.
	Args []string
	// Env is added to the template's environment (later entries win).
	Env []string
	// Workdir, Hostname and User ("uid[:gid]" or names from the container's
	// /etc/passwd and /etc/group) replace the template's when set.
	Workdir, Hostname, User string
	// Network is runtime.NetworkNone (default), runtime.NetworkHost,
	// NetworkBridge or "bridge=NAME"; IP and Publish are a bridged
	// container's address and published ports (see runtime/network).
	Network  string
	IP       string
	Publish  []string
	Limits   runtime.Limits
	ReadOnly bool
	// Driver mounts the root when it is not mounted ("" = the container's).
	Driver string
	// Terminal allocates a pseudo-terminal; the command's TERM is then Term
	// (the caller's), unless the environment sets one.
	Terminal bool
	Term     string
	Stdin    io.Reader
	Stdout   io.Writer
	Stderr   io.Writer

	// Seccomp and NoNewPrivileges are those of runtime.Spec: the system
	// call filter ("" for the default, runtime.SeccompUnconfined, or a
	// profile file) and no_new_privs.
	Seccomp         string
	NoNewPrivileges bool
	// Mounts are the volumes, bind mounts and tmpfs mounts to make.
	Mounts []container.Mount
	// StopSignal is runtime.Spec's: "" for what the init expects.
	StopSignal string
	// Init runs acetate's init as PID 1, with the command its child
	// (runtime.Spec.Init).
	Init bool
	// Restart is the restart policy of a detached container.
	Restart runtime.RestartPolicy
}

// FromSettings returns the options a container's saved settings give; a
// caller adds its streams, and the flags of one run, to them.
func FromSettings(s container.Settings) Options {
	return Options{Args: s.Args, Env: s.Env, Workdir: s.Workdir, Hostname: s.Hostname, User: s.User,
		Network: s.Network, ReadOnly: s.ReadOnly, Driver: s.Driver, Seccomp: s.Seccomp, NoNewPrivileges: s.NoNewPrivileges,
		IP: s.IP, Publish: s.Publish, Limits: runtime.Limits{Memory: s.Memory, CPUs: s.CPUs, Pids: s.Pids}, Mounts: s.Mounts,
		StopSignal: s.StopSignal, Restart: restartPolicy(s.Restart), Init: s.Init}
}

// restartPolicy is the saved policy v, checked when it was set.
func restartPolicy(v string) runtime.RestartPolicy {
	p, _ := runtime.ParseRestartPolicy(v)
	return p
}

// Launcher runs the containers of one store.
type Launcher struct {
	m    *container.Manager
	nets *network.Store
}

// New returns a launcher over the containers of m.
func New(m *container.Manager) *Launcher { return &Launcher{m: m, nets: newNetworks(m)} }

// ErrRunning is wrapped when a container is already running.
var ErrRunning = runtime.ErrRunning

// Run runs the container in the foreground and returns the command's exit
// code (128+n for signal n). It mounts the root if needed and unmounts it
// afterwards if it mounted it.
func (l *Launcher) Run(ctx context.Context, name string, o Options) (int, error) {
	spec, mounted, err := l.prepare(ctx, name, o)
	if err != nil {
		return -1, err
	}
	code, err := runtime.Run(ctx, spec)
	if derr := l.detach(name); err == nil {
		err = derr
	}
	if mounted {
		// rm -f may have unmounted and removed it meanwhile.
		uerr := l.m.Unmount(name)
		if errors.Is(uerr, container.ErrNotMounted) || errors.Is(uerr, container.ErrNotFound) {
			uerr = nil
		}
		if err == nil && uerr != nil {
			err = fmt.Errorf("unmount %s after run: %w", name, uerr)
		}
	}
	return code, err
}

// Start starts the container detached and returns its init's host pid. Its
// output goes to the log (see LogPath).
func (l *Launcher) Start(ctx context.Context, name string, o Options) (int, error) {
	if o.Terminal {
		return -1, errors.New("a detached container cannot have a terminal; use run -t")
	}
	o.Stdin, o.Stdout, o.Stderr = nil, nil, nil
	spec, mounted, err := l.prepare(ctx, name, o)
	if err != nil {
		return -1, err
	}
	pid, err := runtime.Start(spec)
	if err != nil {
		l.detach(name)
	}
	if err != nil && mounted {
		l.m.Unmount(name)
	}
	return pid, err
}

// prepare checks the container is not running, mounts it if needed and
// builds its spec; mounted reports whether this call mounted it.
func (l *Launcher) prepare(ctx context.Context, name string, o Options) (spec runtime.Spec, mounted bool, err error) {
	c, err := l.m.Get(name)
	if err != nil {
		return spec, false, err
	}
	if rs, err := runtime.LoadState(l.m.RunDir(name)); err == nil && rs.Running {
		return spec, false, fmt.Errorf("%s (pid %d): %w", name, rs.Pid, ErrRunning)
	}
	alive, err := container.MountAlive(c)
	if err != nil {
		return spec, false, err
	}
	if !alive { // Mount clears a dead mount (a killed FUSE server's) first
		if c, err = l.m.Mount(ctx, name, o.Driver, ""); err != nil {
			return spec, false, err
		}
		mounted = true
	}
	spec, err = l.spec(c, o)
	if err == nil {
		err = l.attach(c, o, &spec)
	}
	if err != nil && mounted {
		l.m.Unmount(name)
	}
	return spec, mounted, err
}

// spec merges the template config and the options into a runtime spec.
// The environment is, later entries winning: HOME, USER and SHELL of the
// user's entry in the container's /etc/passwd and TERM of a terminal (as
// docker and systemd-nspawn give them), the template's, the options'.
func (l *Launcher) spec(c *container.Container, o Options) (runtime.Spec, error) {
	cfg := c.Config
	s := runtime.Spec{
		Rootfs: c.Mount.Target, Args: o.Args,
		Workdir: firstNonEmpty(o.Workdir, cfg.WorkingDir), Hostname: firstNonEmpty(o.Hostname, cfg.Hostname, c.Name),
		Network: o.Network, ReadOnly: o.ReadOnly, Limits: o.Limits, Terminal: o.Terminal,
		Seccomp: o.Seccomp, NoNewPrivileges: o.NoNewPrivileges,
		Stdin: o.Stdin, Stdout: o.Stdout, Stderr: o.Stderr,
		CgroupName: l.cgroupName(c.Name), StateDir: l.m.RunDir(c.Name),
		// One supervisor runs every detached container of the store.
		Supervisor: l.m.StoreRoot(),
	}
	if len(s.Args) == 0 {
		s.Args = cfg.Cmd
	}
	s.StopSignal, s.Restart, s.Init = o.StopSignal, o.Restart, o.Init
	switch {
	case len(s.Args) > 0:
	case runtime.HasInit(c.Mount.Target):
		// No command: the machine boots, its console on the streams.
		s.Boot, s.Terminal = true, false
	default:
		s.Args = []string{"/bin/sh"}
	}
	var err error
	s.User, s.Group, err = LookupUser(c.Mount.Target, firstNonEmpty(o.User, cfg.User))
	if err != nil {
		return s, err
	}
	if s.Mounts, err = l.mounts(o.Mounts); err != nil {
		return s, err
	}
	s.Env = userEnv(c.Mount.Target, s.User)
	if o.Terminal && o.Term != "" {
		s.Env = append(s.Env, "TERM="+o.Term)
	}
	s.Env = runtime.MergeEnv(runtime.MergeEnv(s.Env, cfg.Env), o.Env)
	return s, os.MkdirAll(s.StateDir, 0o700)
}

// cgroupName is the cgroup of container name, in every hierarchy:
// acetate/STORE/NAME, where STORE is the first 8 hex digits of the SHA-256
// of the store root's absolute path, so that containers of one name in two
// stores (a second store's "host" on the same machine, tests) never share
// a cgroup.
func (l *Launcher) cgroupName(name string) string {
	root, err := filepath.Abs(l.m.StoreRoot())
	if err != nil {
		root = l.m.StoreRoot()
	}
	sum := sha256.Sum256([]byte(root))
	return path.Join("acetate", hex.EncodeToString(sum[:4]), name)
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// Exec runs args in the running container.
func (l *Launcher) Exec(ctx context.Context, name string, args []string, o runtime.ExecOptions) (int, error) {
	c, err := l.m.Get(name)
	if err != nil {
		return -1, err
	}
	if alive, err := container.MountAlive(c); err == nil && c.Mount != nil && !alive {
		return -1, fmt.Errorf("%s: %w from %s (did its FUSE server die?): stop the container and run it again",
			name, container.ErrMountGone, c.Mount.Target)
	}
	if o.User != nil && c.Mount != nil {
		// The user's HOME, USER and SHELL, as for the container's
		// own command; the caller's variables win.
		o.Env = runtime.MergeEnv(userEnv(c.Mount.Target, *o.User), o.Env)
	}
	code, err := runtime.Exec(ctx, l.m.RunDir(name), args, o)
	if errors.Is(err, runtime.ErrNotRunning) {
		return code, fmt.Errorf("%s: %w", name, err)
	}
	return code, err
}

// Stop stops the container (SIGTERM, then SIGKILL after timeout) and
// unmounts its root.
func (l *Launcher) Stop(name string, timeout time.Duration) error {
	c, err := l.m.Get(name)
	if err != nil {
		return err
	}
	if err := runtime.Stop(l.m.RunDir(name), timeout); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("stop %s: %w", name, err)
	}
	if err := l.detach(name); err != nil {
		return fmt.Errorf("stop %s: %w", name, err)
	}
	if c.Mount == nil {
		return nil
	}
	// A foreground run unmounts what it mounted as it ends.
	if err := l.m.Unmount(name); err != nil && !errors.Is(err, container.ErrNotMounted) {
		return err
	}
	return nil
}

// UpdateLimits changes the limits of the running container name at once
// (see runtime.UpdateLimits); it wraps runtime.ErrNotRunning when the
// container does not run.
func (l *Launcher) UpdateLimits(name string, lim runtime.Limits) error {
	if _, err := l.m.Get(name); err != nil {
		return err
	}
	if err := runtime.UpdateLimits(l.m.RunDir(name), lim); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// LogPath is the file a detached container's output goes to: records of
// its lines, with their stream and time (see runtime.ParseLogLine).
func (l *Launcher) LogPath(name string) string { return filepath.Join(l.m.RunDir(name), "log") }
