package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/acetate/acetate/fs/container"
	"github.com/acetate/acetate/fs/fuse"
	"github.com/acetate/acetate/runtime"
	"github.com/acetate/acetate/runtime/launch"
	"golang.org/x/sys/unix"
)

// booted is one container that boots its own init, of some peer.
type booted struct {
	// exec runs args inside and returns their output (stdout and stderr);
	// the error says the command could not run or did not exit 0.
	exec func(ctx context.Context, args ...string) (string, error)
	// stop asks the OS to shut down the way its init expects and returns
	// once the container has ended and its supervisor has seen it end.
	stop func() error
	// roots are the processes whose trees hold every process of the
	// container and every process its tool keeps for it, named "", and the
	// processes of its tool that serve other containers too (each alone,
	// not its tree), with the name to report them by; none when the
	// container has ended.
	roots func() (map[int]string, error)
	// remove kills what is left and removes everything made for it: mounts,
	// cgroups, directories. It may be called more than once, and runs at
	// the end of the bench run in any case (also after an interrupt).
	remove func()
}

// bootPeer is one way of booting a tree's own init in a container.
type bootPeer struct {
	name string
	// missing, when not empty, says why the peer cannot run here.
	missing string
	// boot starts booting container number id and returns without
	// waiting for the boot to end.
	boot func(id int) (*booted, error)
}

// newMachine returns a booted container whose remove runs undo once, also at the end
// of the run.
func (e *env) newMachine(undo func()) *booted {
	m := &booted{remove: sync.OnceFunc(undo)}
	e.onCleanup(m.remove)
	return m
}

// benchName is the prefix of the names the boot scenario gives to what it
// makes on the host for a peer (cgroups, machines), unique to the run.
func benchName() string { return fmt.Sprintf("acetate-bench-%d", os.Getpid()) }

// acetateBootPeer boots containers of the template tpl with driver: with
// cli (a copy of Options.Command), as a user does, by "acetate start";
// without, in this process, through the launcher as acetate start does. The
// container's init runs under the store's supervisor (acetate-supervisor,
// shared by every container of the store), and the fuse driver adds the
// store's FUSE server.
func (e *env) acetateBootPeer(tpl, driver, cli string) bootPeer {
	p := bootPeer{name: "acetate " + driver}
	if !slices.Contains(container.DriverNames(), driver) {
		p.missing = "driver " + driver + " is not available in this build"
	}
	p.boot = func(id int) (*booted, error) {
		a := e.store
		l := launch.New(a.m)
		// Short: the container's console socket is bound at a path in the
		// store, and a socket path has at most 107 bytes.
		name := fmt.Sprintf("b%d-%c%d", os.Getpid(), driver[0], id)
		if _, err := a.m.Create(name, tpl); err != nil {
			return nil, err
		}
		m := e.newMachine(func() {
			l.Stop(name, 5*time.Second)
			a.m.Remove(name, true)
		})
		var pid int
		var err error
		if cli != "" {
			pid, err = e.startByCommand(cli, name, driver)
		} else {
			pid, err = l.Start(e.ctx, name, launch.Options{Driver: driver})
		}
		if err != nil {
			m.remove()
			return nil, err
		}
		a.started(pid)
		m.exec = func(ctx context.Context, args ...string) (string, error) {
			var out bytes.Buffer
			code, err := l.Exec(ctx, name, args, runtime.ExecOptions{Stdout: &out, Stderr: &out})
			if err == nil && code != 0 {
				err = fmt.Errorf("%s: exit %d", args[0], code)
			}
			return out.String(), err
		}
		// "until exit recorded": runtime.Stop returns once the supervisor has
		// written the exit status; the unmount is left to remove.
		m.stop = func() error { return runtime.Stop(a.m.RunDir(name), -1) }
		m.roots = func() (map[int]string, error) {
			supervisor, err := parentOf(pid)
			if errors.Is(err, fs.ErrNotExist) {
				return nil, nil // its init has ended
			}
			if err != nil {
				return nil, err
			}
			roots := map[int]string{pid: "", supervisor: "acetate supervisor (the store's)"}
			if driver == "fuse" {
				c, err := a.m.Get(name)
				if err != nil || c.Mount == nil {
					return nil, fmt.Errorf("fuse server of %s: not mounted (%v)", name, err)
				}
				// One server serves every fuse mount of the store.
				server, err := fuse.ServerPid(a.st.Layers.Root())
				if err != nil {
					return nil, err
				}
				roots[server] = "acetate FUSE server (the store's)"
			}
			return roots, nil
		}
		return m, nil
	}
	return p
}

// copyCommand copies Options.Command into the work directory and returns
// the copy. The supervisor and FUSE server of the containers it starts run
// that file: no page of it is mapped by this process too (which runs
// Options.Command), which would take a share of their Pss that the
// servers of a host that runs acetate alone do not give away.
func (e *env) copyCommand() (string, error) {
	cli := filepath.Join(e.dir("command"), "acetate")
	if err := sh(fmt.Sprintf("cp %q %q", e.opts.Command, cli)); err != nil {
		return "", fmt.Errorf("copy of the acetate command: %w", err)
	}
	return cli, nil
}

// startByCommand runs "cli start NAME --driver DRIVER" on the run's store
// and returns the container's init pid.
func (e *env) startByCommand(cli, name, driver string) (int, error) {
	out, err := exec.CommandContext(e.ctx, cli, "--root", e.store.st.Layers.Root(), "start", name, "--driver", driver).CombinedOutput()
	if err != nil {
		return -1, fmt.Errorf("acetate start: %w: %s", err, firstLine(string(out)))
	}
	st, err := runtime.LoadState(e.store.m.RunDir(name))
	if err != nil {
		return -1, err
	}
	return st.Pid, nil
}

// nspawnBootPeer boots tree with systemd-nspawn -b from a kernel overlay of
// its own, in a network namespace of its own (--private-network), without
// machined or a host systemd (--register=no --keep-unit) and so in a
// cgroup the bench makes for each instance. Commands run inside through
// nsenter into the container's init.
func (e *env) nspawnBootPeer(tree string) bootPeer {
	p := bootPeer{name: "systemd-nspawn -b", missing: needs("systemd-nspawn", "nsenter")}
	p.boot = func(id int) (*booted, error) {
		name := fmt.Sprintf("%s-nspawn-%d", benchName(), id)
		root, err := e.ownOverlay(tree)
		if err != nil {
			return nil, err
		}
		cgroups, err := ownCgroup(name)
		if err != nil {
			unmountOverlay(root)
			return nil, err
		}
		var waitErr error
		exited := make(chan struct{})
		started := false
		m := e.newMachine(func() {
			removeCgroups(cgroups) // kills nspawn and the container
			if started {
				waitFor(exited, 10*time.Second)
				removeCgroups(cgroups) // what was busy until nspawn was reaped
			}
			unmountOverlay(root)
		})
		log, err := os.Create(filepath.Join(filepath.Dir(root), "nspawn.log"))
		if err != nil {
			m.remove()
			return nil, err
		}
		defer log.Close()
		// The shell joins the cgroups, then becomes nspawn.
		cmd := exec.Command("sh", append([]string{"-c", `for d; do echo $$ >"$d/cgroup.procs" || exit 125; done
exec systemd-nspawn -q -D "$ROOT" -M "$NAME" --register=no --keep-unit --private-network -b --console=read-only`,
			"sh"}, cgroups...)...)
		cmd.Env = append(os.Environ(), "ROOT="+root, "NAME="+fmt.Sprintf("bench%d", id))
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			m.remove()
			return nil, fmt.Errorf("systemd-nspawn: %w", err)
		}
		started = true
		go func() {
			waitErr = cmd.Wait()
			close(exited)
		}()
		nspawn := cmd.Process.Pid
		m.exec = func(ctx context.Context, args ...string) (string, error) {
			leader := nspawnLeader(nspawn)
			if leader == 0 {
				return "", errors.New("systemd-nspawn has not started the container's init yet")
			}
			ns := []string{"-t", strconv.Itoa(leader), "-m", "-u", "-i", "-n", "-p", "-C", "-r", "-w", "--"}
			return commandOutput(ctx, "nsenter", append(ns, args...)...)
		}
		m.stop = func() error {
			// nspawn turns SIGTERM into the init's poweroff request
			// (SIGRTMIN+3 for systemd) and exits once the container has.
			if err := cmd.Process.Signal(unix.SIGTERM); err != nil {
				return err
			}
			if !waitFor(exited, runtime.DefaultBootStopTimeout) {
				return errors.New("systemd-nspawn did not exit after SIGTERM")
			}
			if waitErr != nil {
				log, _ := os.ReadFile(filepath.Join(filepath.Dir(root), "nspawn.log"))
				return fmt.Errorf("systemd-nspawn: %w: %s", waitErr, lastLine(string(log)))
			}
			return nil
		}
		m.roots = func() (map[int]string, error) { return map[int]string{nspawn: ""}, nil }
		return m, nil
	}
	return p
}

// nspawnLeader is the container's init under nspawn: the child of nspawn
// that has exec'd (nspawn's own helper children still have its name); 0
// until there is one.
func nspawnLeader(nspawn int) int {
	for _, c := range childrenOf(nspawn) {
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", c))
		if s := strings.TrimSpace(string(comm)); s != "" && s != "systemd-nspawn" {
			return c
		}
	}
	return 0
}

// commandOutput runs a command that runs another inside a container
// (nsenter, lxc-attach) and returns its output. When ctx ends, it kills the
// command's process group and returns after at most two seconds more: the
// process inside, forked into the container's PID namespace, may outlive
// its starter and hold the output pipe (it dies with the container).
func commandOutput(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &unix.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return unix.Kill(-cmd.Process.Pid, unix.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// waitFor waits at most d for done to be closed, and reports whether it was.
func waitFor(done <-chan struct{}, d time.Duration) bool {
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

// unmountOverlay undoes ownOverlay.
func unmountOverlay(mnt string) {
	unix.Unmount(mnt, unix.MNT_DETACH)
	os.RemoveAll(filepath.Dir(mnt))
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	return s[strings.LastIndexByte(s, '\n')+1:]
}

// lxcConfig is a container's LXC configuration: the distribution-neutral
// defaults LXC ships (common.conf: ptys, ttys, the capabilities it drops,
// devices, its seccomp profile, proc/sys/cgroup mounts), the root, a
// network namespace holding only lo, and systemd's poweroff signal.
const lxcConfig = `lxc.include = /usr/share/lxc/config/common.conf
lxc.uts.name = %s
lxc.rootfs.path = dir:%s
lxc.net.0.type = empty
lxc.apparmor.profile = unconfined
lxc.autodev = 1
lxc.signal.halt = SIGRTMIN+3
`

// lxcRunLocks is where LXC keeps a lock file per container, in directories
// named after its lxcpath.
const lxcRunLocks = "/run/lxc/lock"

// removeMade removes, at the end of the run, dir and the directories above
// it that do not exist yet (LXC makes them), as long as they are empty.
func (e *env) removeMade(dir string) {
	var made []string
	for d := dir; d != "/"; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil {
			break
		}
		made = append(made, d)
	}
	e.onCleanup(func() {
		if len(made) > 0 {
			os.RemoveAll(made[0])
		}
		for _, d := range made[1:] {
			os.Remove(d) // fails, as it should, when someone else's is in it
		}
	})
}

// lxcBootPeer boots tree with lxc-start from a kernel overlay of its own.
// LXC makes its cgroups (lxc.monitor.NAME, lxc.payload.NAME, and
// lxc.pivot, which it leaves) at the root of every hierarchy, whatever
// cgroup it is started in; removing a machine removes its two, and the
// end of the run lxc.pivot if it was not there before.
func (e *env) lxcBootPeer(tree string) bootPeer {
	p := bootPeer{name: "lxc-start", missing: needs("lxc-start", "lxc-attach", "lxc-stop", "lxc-info")}
	if _, err := os.Stat("/usr/share/lxc/config/common.conf"); p.missing == "" && err != nil {
		p.missing = "LXC's common.conf is missing: " + err.Error()
	}
	if p.missing != "" {
		return p
	}
	pivots := map[string]bool{}
	for _, d := range cgroupsNamed("lxc.pivot") {
		pivots[d] = true
	}
	e.onCleanup(func() {
		for _, d := range cgroupsNamed("lxc.pivot") {
			if !pivots[d] {
				unix.Rmdir(d) // EBUSY when someone else's LXC container uses it
			}
		}
	})
	lxcPath := e.dir("lxc")
	e.removeMade(filepath.Join(lxcRunLocks, lxcPath))
	p.boot = func(id int) (*booted, error) {
		name := fmt.Sprintf("%s-lxc-%d", benchName(), id)
		root, err := e.ownOverlay(tree)
		if err != nil {
			return nil, err
		}
		lxc := func(tool string, args ...string) *exec.Cmd {
			return exec.Command(tool, append([]string{"-P", lxcPath, "-n", name}, args...)...)
		}
		m := e.newMachine(func() {
			lxc("lxc-stop", "-k").Run()
			removeCgroups(cgroupsNamed("lxc.payload."+name, "lxc.monitor."+name))
			unmountOverlay(root)
			os.RemoveAll(filepath.Join(lxcPath, name))
		})
		if err := os.Mkdir(filepath.Join(lxcPath, name), 0o700); err != nil {
			m.remove()
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(lxcPath, name, "config"), []byte(fmt.Sprintf(lxcConfig, fmt.Sprintf("bench%d", id), root)), 0o600); err != nil {
			m.remove()
			return nil, err
		}
		if out, err := lxc("lxc-start", "-d", "-o", filepath.Join(lxcPath, name, "log"), "-l", "WARN").CombinedOutput(); err != nil {
			m.remove()
			return nil, fmt.Errorf("lxc-start: %w: %s", err, firstLine(string(out)))
		}
		m.exec = func(ctx context.Context, args ...string) (string, error) {
			return commandOutput(ctx, "lxc-attach", append([]string{"-P", lxcPath, "-n", name, "--"}, args...)...)
		}
		m.stop = func() error {
			if out, err := lxc("lxc-stop").CombinedOutput(); err != nil {
				return fmt.Errorf("lxc-stop: %w: %s", err, firstLine(string(out)))
			}
			return nil
		}
		m.roots = func() (map[int]string, error) {
			out, err := lxc("lxc-info", "-p", "-H").Output()
			if err != nil {
				return nil, fmt.Errorf("lxc-info: %w", err)
			}
			init, err := strconv.Atoi(strings.TrimSpace(string(out)))
			if err != nil {
				return nil, nil // no init pid: it has ended
			}
			monitor, err := parentOf(init)
			if errors.Is(err, fs.ErrNotExist) {
				return nil, nil
			}
			return map[int]string{monitor: ""}, err
		}
		return m, nil
	}
	return p
}
