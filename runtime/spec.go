package runtime

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
)

// Network modes for [Spec.Network].
const (
	// NetworkNone gives the container its own network namespace with only
	// the loopback interface, brought up.
	NetworkNone = "none"
	// NetworkHost shares the host's network namespace.
	NetworkHost = "host"
)

// DefaultPath is the PATH given to a container whose Env sets none, as Docker
// does.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Spec describes one container process.
type Spec struct {
	// Rootfs is the container's root directory, already mounted.
	Rootfs string `json:"rootfs"`
	// Args is the command and its arguments. Args[0] is looked up in the
	// PATH of Env inside the container unless it contains a slash.
	Args []string `json:"args"`
	// Env is the command's environment, as "KEY=value"; a later entry
	// replaces an earlier one with the same key (so a caller may append
	// its overrides to an image's environment). PATH defaults to
	// [DefaultPath] and HOSTNAME to Hostname when absent.
	Env []string `json:"env,omitempty"`
	// Workdir is the working directory inside the container; default "/".
	// It is created when missing.
	Workdir string `json:"workdir,omitempty"`
	// Hostname is the container's hostname; empty keeps the host's.
	Hostname string `json:"hostname,omitempty"`
	// User and Group are the numeric uid and gid the command runs as.
	User  uint32 `json:"user"`
	Group uint32 `json:"group"`
	// Network is NetworkNone (the default when empty) or NetworkHost.
	Network string `json:"network,omitempty"`
	// ReadOnly mounts the root read-only.
	ReadOnly bool `json:"readOnly,omitempty"`
	// Seccomp is the system call filter of every process in the
	// container: "" for the default (Docker's default profile),
	// [SeccompUnconfined] for none, else the path of a profile in Docker's
	// JSON format, read at each start and exec.
	Seccomp string `json:"seccomp,omitempty"`
	// NoNewPrivileges sets no_new_privs on the command, so that set-uid
	// and file-capability binaries gain nothing from execve. Off by
	// default: see "Set-uid binaries" in the package doc.
	NoNewPrivileges bool `json:"noNewPrivileges,omitempty"`
	// Limits are the resource limits; they need CgroupName.
	Limits Limits `json:"limits"`
	// Terminal runs the command on a new pseudo-terminal, relayed to Stdin
	// and Stdout. When Stdin is a terminal it is put in raw mode and its
	// window size is copied to the container (and kept in sync).
	Terminal bool `json:"terminal,omitempty"`
	// Stdin, Stdout and Stderr are relayed to and from the command by Run,
	// through pipes (the container never gets the caller's descriptors; a
	// read of Stdin in progress when the container ends is not
	// interrupted, and its data dropped). Nil means /dev/null. Start sends
	// output to StateDir/log instead.
	Stdin  io.Reader `json:"-"`
	Stdout io.Writer `json:"-"`
	Stderr io.Writer `json:"-"`
	// CgroupName is the cgroup path, relative to each hierarchy's root, that
	// the container runs in, e.g. "acetate/web". Empty runs it in the
	// caller's cgroups, without limits. The cgroups are created at start and
	// removed when the container ends.
	CgroupName string `json:"cgroupName,omitempty"`
	// StateDir keeps the state of a container: see [Start]. Required by
	// Start; optional for Run, where it makes the container visible to
	// [Exec], [Stop] and [LoadState] while it runs.
	StateDir string `json:"stateDir,omitempty"`
	// Supervisor is the directory of the process that runs detached
	// containers ([Start]): its socket, lock and log. The containers
	// started with one Supervisor share one process. Empty: StateDir's
	// parent directory.
	Supervisor string `json:"supervisor,omitempty"`
	// NetNS is the path of a network namespace to join (a file that
	// package runtime/network bound one on, set up before the start),
	// instead of making one; not with NetworkHost.
	NetNS string `json:"netns,omitempty"`
	// EtcFiles are host files bound read-only over the container's own
	// (a network's /etc/hosts, /etc/resolv.conf), by absolute container
	// path; a path the root lacks, or that is no regular file, is left.
	EtcFiles map[string]string `json:"etcFiles,omitempty"`

	// Init runs acetate's init as the container's PID 1 and the command as
	// its child, as docker run --init does: it passes every signal it
	// receives on to the command, reaps orphans, and exits with the
	// command's status. Without it the command is PID 1 itself (as
	// docker, podman and systemd-nspawn run one), and nothing of acetate
	// stays in the container; the kernel then gives PID 1 only the
	// signals it handles (see [Stop]), and orphans are its to reap.
	Init bool `json:"init,omitempty"`
	// Boot boots the root's own init (Args, default [DefaultInit]) as
	// the container's PID 1, with what a distribution's init expects of
	// a container: see "Booting an OS" in the package doc.
	Boot bool `json:"boot,omitempty"`
	// StopSignal is the signal [Stop] sends to ask the container to end
	// ("SIGRTMIN+3", "TERM", "15"). Empty: what its init expects (see
	// [Spec.Boot]), SIGTERM for a command.
	StopSignal string `json:"stopSignal,omitempty"`
	// Shutdown is the command [Stop] runs inside the container instead of
	// sending a signal; Start sets it for an init that shuts down only on
	// request (sysvinit: "telinit 0") when StopSignal is empty.
	Shutdown []string `json:"shutdown,omitempty"`
	// TTYs is how many /dev/ttyN a booted container gets besides its
	// console; Start gives a sysvinit root bootTTYs when it is zero.
	TTYs int `json:"ttys,omitempty"`
	// MachineID is a booted container's machine id, which Start keeps in
	// StateDir across boots.
	MachineID string `json:"machineID,omitempty"`
	// Mounts are the volumes, bind mounts and tmpfs mounts made in the
	// root, in order, before the command runs: see [Mount].
	Mounts []Mount `json:"mounts,omitempty"`
	// Restart is what the supervisor of a detached container ([Start]) does
	// when its init ends by itself; Run ignores it.
	Restart RestartPolicy `json:"restart,omitempty"`
}

// DefaultInit is the command a booted container runs when its Args are
// empty.
const DefaultInit = "/sbin/init"

// DefaultPids is the limit on processes and threads of a container that
// has cgroups and no Limits.Pids, as systemd's DefaultTasksMax bounds every
// service: a fork bomb in a container stops there, not at the host's limit.
const DefaultPids = 4096

// Limits are a container's resource limits. A zero field means unlimited,
// except Pids.
type Limits struct {
	// Memory is the memory limit in bytes (swap included, where the
	// kernel accounts swap). See [ParseMemory].
	Memory int64 `json:"memory,omitempty"`
	// Pids is the maximum number of processes and threads: 0 means
	// [DefaultPids], a negative number no limit. It needs a cgroup: a
	// container without CgroupName has no limit at all.
	Pids int64 `json:"pids,omitempty"`
	// CPUs is the CPU bandwidth in CPUs, e.g. 0.5. See [ParseCPUs].
	CPUs float64 `json:"cpus,omitempty"`
}

// IsZero reports whether no limit is set.
func (l Limits) IsZero() bool { return l == Limits{} }

// pidsMax returns the pids limit to write, or 0 for none.
func (l Limits) pidsMax() int64 {
	switch {
	case l.Pids == 0:
		return DefaultPids
	case l.Pids < 0:
		return 0
	}
	return l.Pids
}

// ErrInvalidSpec is wrapped by every error that rejects a Spec.
var ErrInvalidSpec = errors.New("invalid container spec")

func (s *Spec) validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidSpec, fmt.Sprintf(format, a...))
	}
	if s.Rootfs == "" || !filepath.IsAbs(s.Rootfs) {
		return bad("rootfs %q is not an absolute path", s.Rootfs)
	}
	if s.Boot && len(s.Args) == 0 {
		s.Args = []string{DefaultInit}
	}
	if len(s.Args) == 0 || s.Args[0] == "" {
		return bad("no command")
	}
	if s.Boot && s.Terminal {
		return bad("a booted container has a console, not a terminal")
	}
	if s.Boot && s.CgroupName == "" {
		// Without a cgroup namespace of its own, systemd would make
		// its cgroups in the host's hierarchies.
		return bad("a booted container needs a cgroup name")
	}
	if _, err := s.stopSignal(); err != nil {
		return bad("%v", err)
	}
	switch s.Network {
	case "", NetworkNone, NetworkHost:
	default:
		return bad("network %q: want %q or %q", s.Network, NetworkNone, NetworkHost)
	}
	if s.NetNS != "" && (s.Network == NetworkHost || !filepath.IsAbs(s.NetNS)) {
		return bad("network namespace %q: want an absolute path, and a network other than %q", s.NetNS, NetworkHost)
	}
	for path, src := range s.EtcFiles {
		if !filepath.IsAbs(path) || !filepath.IsAbs(src) {
			return bad("file %q bound on %q: want absolute paths", src, path)
		}
	}
	if s.Seccomp != "" && s.Seccomp != SeccompUnconfined && !filepath.IsAbs(s.Seccomp) {
		return bad("seccomp profile %q is not %q or an absolute path", s.Seccomp, SeccompUnconfined)
	}
	if s.Workdir != "" && !filepath.IsAbs(s.Workdir) {
		return bad("workdir %q is not an absolute path", s.Workdir)
	}
	if s.Limits.Memory < 0 || s.Limits.CPUs < 0 {
		return bad("negative limit %+v", s.Limits)
	}
	if !s.Limits.IsZero() && s.CgroupName == "" {
		return bad("limits %+v need a cgroup name", s.Limits)
	}
	if s.CgroupName != "" {
		c := filepath.Clean(s.CgroupName)
		if filepath.IsAbs(c) || c == "." || c == ".." || strings.HasPrefix(c, "../") {
			return bad("cgroup name %q must be a relative path below the hierarchy root", s.CgroupName)
		}
	}
	for _, m := range s.Mounts {
		if err := CheckMount(m); err != nil {
			return bad("%v", err)
		}
	}
	for _, e := range s.Env {
		if !strings.Contains(e, "=") {
			return bad("environment entry %q has no '='", e)
		}
	}
	return nil
}

// commandEnv returns the environment the command gets: Env with PATH and
// HOSTNAME defaulted.
func (s *Spec) commandEnv() []string {
	env := MergeEnv(nil, s.Env)
	if envValue(env, "PATH") == "" {
		env = append(env, "PATH="+DefaultPath)
	}
	if s.Hostname != "" && !envHas(env, "HOSTNAME") {
		env = append(env, "HOSTNAME="+s.Hostname)
	}
	return env
}

// MergeEnv returns base with the entries of extra added, an entry of extra
// replacing the one of base with the same key (programs read the first).
func MergeEnv(base, extra []string) []string {
	out := append([]string(nil), base...)
	for _, e := range extra {
		key, _, _ := strings.Cut(e, "=")
		replaced := false
		for i, b := range out {
			if strings.HasPrefix(b, key+"=") {
				out[i], replaced = e, true
			}
		}
		if !replaced {
			out = append(out, e)
		}
	}
	return out
}

func envHas(env []string, key string) bool {
	for _, e := range env {
		if strings.HasPrefix(e, key+"=") {
			return true
		}
	}
	return false
}

func envValue(env []string, key string) string {
	v := ""
	for _, e := range env {
		if strings.HasPrefix(e, key+"=") {
			v = e[len(key)+1:]
		}
	}
	return v
}
