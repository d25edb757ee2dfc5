package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"time"

	"github.com/acetate/acetate/fs/container"
	"github.com/acetate/acetate/runtime"
	"github.com/acetate/acetate/runtime/launch"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// exitLaunchFailed is the exit code of run and exec when acetate itself
// fails (not the command), as docker uses 125; 126 and 127 come from the
// launcher for a command that cannot run or does not exist.
const exitLaunchFailed = 125

// minMemory is the least --memory accepted: what the container's init
// needs to start a command, with docker's margin (docker's minimum too).
const minMemory = 6 << 20

// newRunCmds returns the launcher commands.
func newRunCmds(a *app) []*cobra.Command {
	return []*cobra.Command{newRunCmd(a), newStartCmd(a), newExecCmd(a), newStopCmd(a), newLogsCmd(a), newPsCmd(a), newLsCmd(a)}
}

// launcher opens the launcher over the store's containers.
func (a *app) launcher() (*launch.Launcher, *container.Manager, error) {
	m, err := a.containers()
	if err != nil {
		return nil, nil, err
	}
	return launch.New(m), m, nil
}

// runFlags are the flags of a container's settings, which create, set,
// run and start share, with run's terminal flags and run and start's
// --from.
type runFlags struct {
	from, hostname, workdir, user, net, memory, cpus, driver string
	env, securityOpts                                        []string
	volumes, tmpfs                                           []string
	pids                                                     int64
	readOnly, tty, interactive, init                         bool
	// The machine's: how it stops, comes back, and boots with the host.
	stopSignal, restart string
	onboot              bool
	bootOrder           int
	// A bridged container's address and published ports (--ip, -p).
	ip      string
	publish []string
	// The disk quota of its differences (--disk, --inodes).
	disk   string
	inodes int64
}

// add registers the settings flags on cmd; foreground adds -t and -i.
func (f *runFlags) add(cmd *cobra.Command, foreground bool) {
	fl := cmd.Flags()
	fl.StringVar(&f.hostname, "hostname", "", "hostname (default: the template's, else the container's name)")
	fl.StringArrayVarP(&f.env, "env", "e", nil, "environment variable KEY=VALUE (repeatable)")
	fl.StringVarP(&f.workdir, "workdir", "w", "", "working directory inside the container")
	fl.StringVarP(&f.user, "user", "u", "", "user[:group], as numbers or names from the container's /etc/passwd")
	fl.StringVar(&f.net, "net", runtime.NetworkNone, "network: none (own namespace, loopback up), host, or bridge[=NAME]\n(an address of its own on network NAME, default acetate: see acetate network)")
	fl.StringVar(&f.ip, "ip", "", "address on the bridge network, as vzctl --ipadd (default: a free one, kept until rm)")
	fl.StringArrayVarP(&f.publish, "publish", "p", nil, "publish a port of a bridged container: [HOSTIP:]HOSTPORT:PORT[/tcp|udp]\n(repeatable; replaces the container's; -p '' for none)")
	fl.StringVarP(&f.memory, "memory", "m", "", "memory limit, e.g. 512m or 1g (0: none)")
	fl.Int64Var(&f.pids, "pids", 0, fmt.Sprintf("maximum number of processes and threads (default %d; -1: no limit)", runtime.DefaultPids))
	fl.StringVar(&f.cpus, "cpus", "", "CPU limit, e.g. 0.5 (0: none)")
	fl.StringVar(&f.disk, "disk", "", "disk quota of the container's differences, e.g. 10g (0: none); writes past\nit fail with ENOSPC, df inside shows it; set changes it while unmounted")
	fl.Int64Var(&f.inodes, "inodes", 0, "inode limit of the differences, with --disk (0: one per 4 KiB)")
	fl.BoolVar(&f.readOnly, "read-only", false, "mount the root read-only")
	fl.StringArrayVar(&f.securityOpts, "security-opt", nil, "seccomp=unconfined (no system call filter), seccomp=PROFILE.json\n(a Docker-format profile instead of Docker's default one), or\nno-new-privileges (set-uid binaries gain nothing); repeatable")
	fl.StringArrayVarP(&f.volumes, "volume", "v", nil, "bind mount HOSTPATH:PATH[:ro] or named volume NAME:PATH[:ro] (repeatable;\nreplaces the container's; -v '' for none)")
	fl.StringArrayVar(&f.tmpfs, "tmpfs", nil, "tmpfs at PATH[:size=N] (repeatable; replaces the container's; --tmpfs '' for none)")
	fl.StringVar(&f.driver, "driver", "", "mount driver when not mounted: "+strings.Join(container.DriverNames(), " or "))
	fl.BoolVar(&f.init, "init", false, "run acetate's init as PID 1, the command as its child: it passes signals\non and reaps orphans (default: the command is PID 1, and gets only the\nsignals it handles, as with docker and podman)")
	fl.StringVar(&f.stopSignal, "stop-signal", "", "signal stop sends (default: what the init expects: SIGRTMIN+3 for\nsystemd, 'telinit 0' run inside for sysvinit; SIGTERM for a command)")
	fl.StringVar(&f.restart, "restart", "", "restart policy of a detached container: no, on-failure[:N] (at most\nN restarts), always, unless-stopped")
	fl.BoolVar(&f.onboot, "onboot", false, "start the container when the host boots (acetate autostart)")
	fl.IntVar(&f.bootOrder, "boot-order", 0, "order of autostart, lower first; equal ones start in parallel")
	if foreground {
		fl.BoolVarP(&f.tty, "tty", "t", false, "allocate a pseudo-terminal")
		fl.BoolVarP(&f.interactive, "interactive", "i", false, "keep standard input attached")
	}
}

// addFrom registers run and start's --from.
func (f *runFlags) addFrom(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.from, "from", "", "create the container from this template first if it does not exist")
}

// liveSettings are the flags whose values set applies to a running
// container at once: the limits the kernel changes in its cgroup files.
var liveSettings = []string{"memory", "cpus", "pids"}

// storageSettings are the flags set applies at once, running or not: the
// disk quota, which changes the container's storage (or is refused).
var storageSettings = []string{"disk", "inodes"}

// setting is how one flag, when given, changes a container's settings.
type setting struct {
	flag  string
	apply func(s *container.Settings) error
}

// settings lists the settings flags, each with how it changes Settings
// and checks its value.
func (f *runFlags) settings() []setting {
	return []setting{
		{"hostname", func(s *container.Settings) error { s.Hostname = f.hostname; return nil }},
		{"user", func(s *container.Settings) error { s.User = f.user; return nil }},
		{"read-only", func(s *container.Settings) error { s.ReadOnly = f.readOnly; return nil }},
		{"init", func(s *container.Settings) error { s.Init = f.init; return nil }},
		{"env", f.setEnv},
		{"workdir", f.setWorkdir},
		{"net", f.setNet},
		{"ip", func(s *container.Settings) error { s.IP = f.ip; return nil }},
		{"publish", f.setPublish},
		{"driver", f.setDriver},
		{"memory", f.setMemory},
		{"cpus", f.setCPUs},
		{"pids", f.setPids},
		{"disk", f.setDisk},
		{"inodes", func(s *container.Settings) error { s.Inodes = f.inodes; return nil }},
		{"security-opt", f.setSecurity},
		{"volume", f.setVolumes},
		{"tmpfs", f.setTmpfs},
		{"stop-signal", f.setStopSignal},
		{"restart", f.setRestart},
		{"onboot", func(s *container.Settings) error { s.Onboot = f.onboot; return nil }},
		{"boot-order", func(s *container.Settings) error { s.BootOrder = f.bootOrder; return nil }},
	}
}

// apply changes s by the flags given on cmd's command line, and sets its
// command when args has one; it returns the flags given. Bad values are
// usage errors, found before s is changed by any of them.
func (f *runFlags) apply(cmd *cobra.Command, args []string, s *container.Settings) ([]string, error) {
	next := *s
	var given []string
	for _, st := range f.settings() {
		if !cmd.Flags().Changed(st.flag) {
			continue
		}
		if err := st.apply(&next); err != nil {
			return nil, usageError{err}
		}
		given = append(given, st.flag)
	}
	if err := launch.CheckNetwork(next.Network, next.IP, next.Publish); err != nil {
		return nil, usageError{err}
	}
	if len(args) > 0 {
		next.Args, given = args, append(given, "command")
	}
	*s = next
	return given, nil
}

func (f *runFlags) setEnv(s *container.Settings) error {
	for _, e := range f.env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			return fmt.Errorf("--env %q: use KEY=VALUE", e)
		}
	}
	s.Env = runtime.MergeEnv(s.Env, f.env)
	return nil
}

func (f *runFlags) setWorkdir(s *container.Settings) error {
	if f.workdir != "" && !filepath.IsAbs(f.workdir) {
		return fmt.Errorf("--workdir %q: give an absolute path", f.workdir)
	}
	s.Workdir = f.workdir
	return nil
}

func (f *runFlags) setNet(s *container.Settings) error {
	if err := launch.CheckNetwork(f.net, "", nil); err != nil {
		return fmt.Errorf("--net: %w", err)
	}
	if _, bridged := launch.BridgeNetwork(f.net); !bridged {
		s.IP, s.Publish = "", nil // the address and ports go with the bridge
	}
	s.Network = f.net
	return nil
}

func (f *runFlags) setPublish(s *container.Settings) error {
	s.Publish = nil
	if len(f.publish) == 1 && f.publish[0] == "" {
		return nil
	}
	s.Publish = f.publish
	return nil
}

func (f *runFlags) setDriver(s *container.Settings) error {
	if f.driver != "" && !slices.Contains(container.DriverNames(), f.driver) {
		return fmt.Errorf("--driver %q: use one of %s", f.driver, strings.Join(container.DriverNames(), ", "))
	}
	s.Driver = f.driver
	return nil
}

func (f *runFlags) setDisk(s *container.Settings) error {
	s.Disk = 0
	if f.disk == "" || f.disk == "0" {
		return nil
	}
	n, err := runtime.ParseMemory(f.disk)
	if err != nil {
		return fmt.Errorf("--disk: %w", err)
	}
	s.Disk = n
	return container.ValidateQuota(container.Settings{Disk: n})
}

func (f *runFlags) setMemory(s *container.Settings) error {
	if f.memory == "" || f.memory == "0" {
		s.Memory = 0
		return nil
	}
	n, err := runtime.ParseMemory(f.memory)
	if err != nil {
		return fmt.Errorf("--memory: %w", err)
	}
	if n < minMemory {
		return fmt.Errorf("--memory %s: the least is 6m (6 MiB, docker's minimum too): with less, the container's init can be killed before the command starts", f.memory)
	}
	s.Memory = n
	return nil
}

func (f *runFlags) setCPUs(s *container.Settings) error {
	if f.cpus == "" || f.cpus == "0" {
		s.CPUs = 0
		return nil
	}
	n, err := runtime.ParseCPUs(f.cpus)
	if err != nil {
		return fmt.Errorf("--cpus: %w", err)
	}
	if ncpu := goruntime.NumCPU(); n > float64(ncpu) {
		return fmt.Errorf("--cpus %s: this machine has %d CPU(s) for acetate: give at most %d", f.cpus, ncpu, ncpu)
	}
	s.CPUs = n
	return nil
}

// minPids is the least --pids accepted: the command and one process it
// starts (acetate's own helpers are not counted).
const minPids = 2

func (f *runFlags) setPids(s *container.Settings) error {
	if f.pids < -1 {
		return fmt.Errorf("--pids %d: must be positive, or -1 for no limit", f.pids)
	}
	if f.pids > 0 && f.pids < minPids {
		return fmt.Errorf("--pids %d: too few for anything but a lone command; give at least %d (-1: no limit)", f.pids, minPids)
	}
	s.Pids = f.pids
	return nil
}

func (f *runFlags) setStopSignal(s *container.Settings) error {
	if f.stopSignal != "" {
		if _, err := runtime.ParseSignal(f.stopSignal); err != nil {
			return fmt.Errorf("--stop-signal: %w", err)
		}
	}
	s.StopSignal = f.stopSignal
	return nil
}

func (f *runFlags) setRestart(s *container.Settings) error {
	p, err := runtime.ParseRestartPolicy(f.restart)
	if err != nil {
		return fmt.Errorf("--restart: %w", err)
	}
	s.Restart = p.String()
	if s.Restart == runtime.RestartNo {
		s.Restart = ""
	}
	return nil
}

// setSecurity replaces the security settings by the --security-opt values.
func (f *runFlags) setSecurity(s *container.Settings) error {
	s.Seccomp, s.NoNewPrivileges = "", false
	for _, opt := range f.securityOpts {
		key, value, _ := strings.Cut(opt, "=")
		switch {
		case key == "no-new-privileges" && (value == "" || value == "true"):
			s.NoNewPrivileges = true
		case key == "seccomp" && value == runtime.SeccompUnconfined:
			s.Seccomp = value
		case key == "seccomp" && value != "":
			// Read by each start, from wherever the command runs.
			abs, err := filepath.Abs(value)
			if err != nil {
				return fmt.Errorf("--security-opt %s: %w", opt, err)
			}
			if _, err := os.Stat(abs); err != nil {
				return fmt.Errorf("--security-opt %s: %w", opt, err)
			}
			s.Seccomp = abs
		default:
			return fmt.Errorf("--security-opt %q: use seccomp=unconfined, seccomp=PROFILE.json or no-new-privileges", opt)
		}
	}
	return nil
}

// options are the launch options of settings s, with run's terminal and
// streams.
func (f *runFlags) options(a *app, s container.Settings) launch.Options {
	o := launch.FromSettings(s)
	o.Terminal, o.Stdout, o.Stderr = f.tty, a.stdout, a.stderr
	if f.tty {
		o.Term = os.Getenv("TERM")
	}
	if f.interactive {
		o.Stdin = a.stdin
	}
	return o
}

// runE builds the RunE of run and start: it checks the flags, the command
// (args after NAME) and NAME first, so that bad ones touch nothing, then
// creates the container if --from says so (fail wraps an error there),
// and calls do with the container's settings changed by the flags given,
// for this run only.
func (f *runFlags) runE(a *app, fail func(error) error, do func(c *cobra.Command, m *container.Manager, name string, o launch.Options) error) func(*cobra.Command, []string) error {
	return func(c *cobra.Command, args []string) error {
		var given container.Settings
		if _, err := f.apply(c, args[1:], &given); err != nil {
			return err
		}
		if f.tty && !isTerminal(a.stdin) {
			return usageError{fmt.Errorf("-t needs standard input to be a terminal")}
		}
		return a.containerRun(func(c *cobra.Command, m *container.Manager, name string, cmdArgs []string) error {
			ct, err := f.ensure(m, name, given)
			if err != nil {
				return fail(err)
			}
			s := ct.Settings
			if _, err := f.apply(c, cmdArgs, &s); err != nil {
				return err
			}
			return do(c, m, name, f.options(a, s))
		})(c, args)
	}
}

// ensure returns container name, created from --from with settings s
// when it does not exist. An existing container made from another
// template than --from is a usage error: running it would silently run
// something else than asked.
func (f *runFlags) ensure(m *container.Manager, name string, s container.Settings) (*container.Container, error) {
	c, err := m.Get(name)
	if f.from == "" || (err != nil && !errors.Is(err, container.ErrNotFound)) {
		return c, err
	}
	r, perr := parseRef(f.from)
	if perr != nil {
		return nil, perr
	}
	if err != nil {
		return m.Create(name, f.from, container.WithSettings(s))
	}
	if c.Template != r.String() {
		return nil, usageError{fmt.Errorf("container %s exists, made from %s, not %s: run it without --from, or remove it first (acetate rm %s)",
			name, c.Template, r, name)}
	}
	return c, nil
}

// runOnly is what the help of run and start says of their flags.
const runOnly = `

Without flags, the container runs with its settings (acetate create, acetate
set; acetate inspect shows them). Flags and a command given here apply to
this run only and change no setting, except when --from creates the
container: they are then its settings.`

func newRunCmd(a *app) *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run NAME [flags] [-- CMD ARGS...]",
		Short: "Run a command in a container, in the foreground",
		Long: `Run mounts the container if needed and runs CMD (default: the template's
command, else /bin/sh) under acetate's init, which is PID 1 of new mount,
PID, UTS, IPC, cgroup and network namespaces, reaps zombies and forwards
signals; with pivot_root into the container's root, a fresh /proc, read-only
/sys, a minimal /dev, reduced capabilities, Docker's default seccomp
profile, a new session keyring, and at most 4096 processes unless --pids
says otherwise. With --from, a container that does not exist is created from
TEMPLATE first; an existing one made from another template is refused.
Standard streams are relayed through pipes (never the caller's own
descriptors) and signals forwarded; acetate exits with the command's exit
code (128+n when signal n killed it), 125 when acetate itself fails, 127
when the command does not exist.` + runOnly,
		Example: `  acetate run web1 -- cat /etc/os-release
  acetate run --from debian:12 box -it -- bash
  acetate run web1 --memory 256m --pids 100 --cpus 0.5 -- ./load-test
  acetate run web1 --user nobody --read-only --net host -- id`,
		Args: minArgs(1, "a container NAME"),
		RunE: f.runE(a, launchFailed, func(c *cobra.Command, m *container.Manager, name string, o launch.Options) error {
			code, err := launch.New(m).Run(c.Context(), name, o)
			if err != nil {
				return launchFailed(err)
			}
			return exitWith(code)
		}),
	}
	f.add(cmd, true)
	f.addFrom(cmd)
	return cmd
}

// launchFailed marks an error of acetate's own while launching: exit 125,
// unless it is a usage or not-found error.
func launchFailed(err error) error {
	if code := exitCode(err); code != exitFailure {
		return err
	}
	return exitError{err, exitLaunchFailed}
}

// exitError is an error with a chosen exit code.
type exitError struct {
	error
	code int
}

func (e exitError) Unwrap() error { return e.error }

func exitWith(code int) error {
	if code == 0 {
		return nil
	}
	return commandExit{code}
}

func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func newStartCmd(a *app) *cobra.Command {
	var f runFlags
	var attach bool
	cmd := &cobra.Command{
		Use:   "start NAME [flags] [-- CMD ARGS...]",
		Short: "Start a container detached",
		Long: `Start mounts the container if needed and starts CMD detached, under an init
that is PID 1, reaps zombies and forwards signals. Output goes to the
container's log (acetate logs NAME). The container stays mounted until
acetate stop.

A container with no command (none given, saved or in its template) whose
root has /sbin/init boots it, as vzctl start and systemd-nspawn -b do:
systemd or sysvinit runs as PID 1 with container=acetate, /run and
/run/lock as tmpfs, a cgroup2 subtree of its own on /sys/fs/cgroup, its
hostname and machine id written in /etc, and its console (and, for
sysvinit, tty1-6) on pseudo-terminals that acetate holds: acetate console
attaches, --console at once; the console's output also goes to the log.
acetate stop shuts it down as its init expects; its restart policy
(--restart) brings it back when it ends by itself.` + runOnly,
		Example: `  acetate start web1 -- /usr/sbin/nginx -g 'daemon off;'
  acetate start --from debian:12 sleeper -- sleep infinity && acetate ps
  acetate start --from debian-systemd:12 vm1 --memory 512m --restart always --console`,
		Args: minArgs(1, "a container NAME"),
		RunE: f.runE(a, func(err error) error { return err }, func(c *cobra.Command, m *container.Manager, name string, o launch.Options) error {
			l := launch.New(m)
			pid, err := l.Start(c.Context(), name, o)
			if err != nil {
				return err
			}
			if attach {
				return a.attachConsole(l, name, "")
			}
			if a.format == "json" {
				return a.render(map[string]any{"name": name, "pid": pid}, table{})
			}
			fmt.Fprintf(a.stdout, "%s started, pid %d\n", name, pid)
			return nil
		}),
	}
	f.add(cmd, false)
	f.addFrom(cmd)
	cmd.Flags().BoolVar(&attach, "console", false, "attach to the booted container's console once started (Ctrl-] detaches)")
	return cmd
}

func newExecCmd(a *app) *cobra.Command {
	var tty, interactive bool
	var env []string
	var workdir, user string
	cmd := &cobra.Command{
		Use:   "exec NAME [flags] -- CMD ARGS...",
		Short: "Run a command in a running container",
		Long: `Exec runs CMD in all the namespaces and cgroups of a running container,
with its capability limits. It exits with the command's exit code.`,
		Example: `  acetate exec web1 -- ps aux
  acetate exec -it web1 -- bash`,
		Args: minArgs(2, "a container NAME and a command"),
		RunE: a.containerRun(func(c *cobra.Command, m *container.Manager, name string, args []string) error {
			o := runtime.ExecOptions{Env: env, Workdir: workdir, Terminal: tty, Stdout: a.stdout, Stderr: a.stderr}
			if interactive || tty {
				o.Stdin = a.stdin
			}
			if user != "" {
				st, err := launch.New(m).State(name)
				if err != nil {
					return err
				}
				uid, gid, err := launch.LookupUser(st.MountedAt, user)
				if err != nil {
					return usageError{err}
				}
				o.User, o.Group = &uid, &gid
			}
			code, err := launch.New(m).Exec(c.Context(), name, args, o)
			if err != nil {
				return launchFailed(err)
			}
			return exitWith(code)
		}),
	}
	fl := cmd.Flags()
	fl.BoolVarP(&tty, "tty", "t", false, "allocate a pseudo-terminal")
	fl.BoolVarP(&interactive, "interactive", "i", false, "keep standard input attached")
	fl.StringArrayVarP(&env, "env", "e", nil, "environment variable KEY=VALUE (repeatable)")
	fl.StringVarP(&workdir, "workdir", "w", "", "working directory inside the container")
	fl.StringVarP(&user, "user", "u", "", "user[:group]")
	return cmd
}

func newStopCmd(a *app) *cobra.Command {
	var seconds int
	cmd := &cobra.Command{
		Use:   "stop NAME...",
		Short: "Stop running containers and unmount them",
		Long: `Stop asks each container to end the way its init expects (a booted systemd:
SIGRTMIN+3; sysvinit: telinit 0 inside; a command: SIGTERM, or the
container's --stop-signal), waits --time seconds, kills what is left, and
unmounts the container. Its restart policy does not start it again, and
autostart leaves an unless-stopped container stopped. It works on
containers started by run in the foreground too.`,
		Example: `  acetate stop web1
  acetate stop --time 2 web1 web2`,
		Args: minArgs(1, "at least one container NAME"),
		RunE: func(c *cobra.Command, args []string) error {
			return a.eachContainer(args, func(l *launch.Launcher, name string) error {
				return l.Stop(name, stopTimeout(seconds))
			})
		},
	}
	cmd.Flags().IntVarP(&seconds, "time", "t", -1, timeHelp)
	return cmd
}

func newLogsCmd(a *app) *cobra.Command {
	var o launch.LogOptions
	var since, until string
	cmd := &cobra.Command{
		Use:   "logs NAME",
		Short: "Print the output of a detached container",
		Long: `Logs prints what a detached container (acetate start) wrote: its standard
output to standard output, its standard error to standard error, in the
order it was written. --tail N starts at the last N lines; with -f it then
keeps printing. --since and --until take a duration before now (10m, 1h30m)
or a time (2026-12-01T07:40:00Z, RFC 3339) and print the lines logged in
between; lines logged before acetate kept times are then left out.
--timestamps starts each line with the time it was logged (RFC 3339 with
nanoseconds).`,
		Example: `  acetate logs web1
  acetate logs -f --tail 20 web1
  acetate logs --since 10m --timestamps web1 2>/dev/null`,
		Args: exactArgs(1),
		RunE: a.containerRun(func(c *cobra.Command, m *container.Manager, name string, _ []string) error {
			if o.Tail < -1 {
				return usageError{fmt.Errorf("--tail %d: give a number of lines, or -1 for all", o.Tail)}
			}
			var err error
			now := time.Now()
			if o.Since, err = logTime("--since", since, now); err != nil {
				return err
			}
			if o.Until, err = logTime("--until", until, now); err != nil {
				return err
			}
			l := launch.New(m)
			if _, err := l.State(name); err != nil {
				return err
			}
			o.Stdout, o.Stderr = a.stdout, a.stderr
			return launch.FollowLog(c.Context(), l, name, o)
		}),
	}
	cmd.Flags().BoolVarP(&o.Follow, "follow", "f", false, "keep printing output until the container ends")
	cmd.Flags().IntVarP(&o.Tail, "tail", "n", -1, "start at the last N lines (-1: all)")
	cmd.Flags().StringVar(&since, "since", "", "only lines logged since a duration before now (10m) or a time (RFC 3339)")
	cmd.Flags().StringVar(&until, "until", "", "only lines logged until a duration before now (10m) or a time (RFC 3339)")
	cmd.Flags().BoolVarP(&o.Timestamps, "timestamps", "t", false, "start each line with the time it was logged")
	return cmd
}

// logTime parses the value of flag (--since, --until): "" (no bound), a
// duration before now, or an RFC 3339 time.
func logTime(flag, v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return t, usageError{fmt.Errorf("%s %q: give a duration before now (10m, 1h30m) or a time (2026-12-01T07:40:00Z)", flag, v)}
	}
	return t, nil
}

func newPsCmd(a *app) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "ps",
		Short: "List running containers (-a: all) with state, pid, disk used and uptime",
		Example: `  acetate ps
  acetate ps -a --format json`,
		Args: exactArgs(0),
		RunE: func(c *cobra.Command, args []string) error { return a.listContainers(all) },
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "show every container, not only running ones")
	return cmd
}

func newLsCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "ls",
		Short: "List all containers with state, pid, disk used, uptime and mount",
		Long: `Ls lists every container. DIFF, the disk its differences use, is the
figure kept at its last mount or unmount (or its disk quota's use, live):
listing walks no container's files, so a thousand containers list in tens of
milliseconds. acetate inspect NAME measures it now.`,
		Example: `  acetate ls
  acetate ls --format json | jq -r '.[] | select(.state == "running") | .name'`,
		Args: exactArgs(0),
		RunE: func(c *cobra.Command, args []string) error { return a.listContainers(true) },
	}
}

// listContainers renders the status of the running containers, or of all.
func (a *app) listContainers(all bool) error {
	l, m, err := a.launcher()
	if err != nil {
		return err
	}
	list, err := l.List()
	if err != nil {
		return err
	}
	shown := []*launch.Status{}
	t := table{header: []string{"NAME", "STATE", "PID", "TEMPLATE", "DIFF", "STATUS", "MOUNTED AT"}}
	for _, s := range list {
		if !all && !s.Alive() {
			continue
		}
		shown = append(shown, s)
		pid, at := "-", "-"
		if s.Pid > 0 {
			pid = fmt.Sprint(s.Pid)
		}
		if s.MountedAt != "" {
			at = s.MountedAt + " (" + s.Driver + ")"
		}
		diff := humanBytes(s.DiffBytes)
		if q, _ := m.Quota(s.Name); q != nil {
			diff = humanBytes(q.Used) + "/" + humanBytes(q.Disk)
		}
		t.rows = append(t.rows, []string{s.Name, s.State, pid, s.Template, diff, statusText(s), at})
	}
	return a.render(shown, t)
}

// statusText is docker's STATUS column: "Up 5 minutes", "Exited (0) 2 hours ago".
func statusText(s *launch.Status) string {
	switch {
	case s.Started != nil:
		return "Up " + time.Since(*s.Started).Round(time.Second).String()
	case s.ExitCode != nil && s.Finished != nil:
		return fmt.Sprintf("Exited (%d) %s ago", *s.ExitCode, time.Since(*s.Finished).Round(time.Second))
	}
	return "Created " + time.Since(s.Created).Round(time.Second).String() + " ago"
}
