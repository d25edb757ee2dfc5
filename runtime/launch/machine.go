package launch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/acetate/acetate/fs/container"
	"github.com/acetate/acetate/runtime"
	"github.com/acetate/acetate/runtime/console"
	"golang.org/x/sys/unix"
)

// Kill sends sig to the init of the running container name (see
// runtime.Kill).
func (l *Launcher) Kill(name string, sig unix.Signal) error {
	if _, err := l.m.Get(name); err != nil {
		return err
	}
	if err := runtime.Kill(l.m.RunDir(name), sig); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// ErrNoConsole is wrapped when a container has no console to attach to: it
// does not run, or it runs a command rather than a booted OS.
var ErrNoConsole = errors.New("no console")

// Console attaches in and out to the console (tty "" or "console") or the
// tty ("tty1"...) of the booted container name until the user types
// detach or the container ends (see console.Attach).
func (l *Launcher) Console(name, tty string, in io.Reader, out io.Writer, detach byte) error {
	if _, err := l.m.Get(name); err != nil {
		return err
	}
	st, err := runtime.LoadState(l.m.RunDir(name))
	switch {
	case err != nil || !st.Running:
		return fmt.Errorf("%s: %w: it is not running", name, ErrNoConsole)
	case !st.Spec.Boot:
		return fmt.Errorf("%s: %w: it runs a command, not a booted OS (use acetate exec -it or acetate logs)", name, ErrNoConsole)
	}
	if tty == "" {
		tty = "console"
	}
	return console.Attach(runtime.ConsoleSocket(l.m.RunDir(name)), tty, in, out, detach)
}

// Restart stops the container name (see Stop) and starts it again
// detached with its settings.
func (l *Launcher) Restart(ctx context.Context, name string, timeout time.Duration) (int, error) {
	c, err := l.m.Get(name)
	if err != nil {
		return -1, err
	}
	if err := l.Stop(name, timeout); err != nil {
		return -1, err
	}
	return l.Start(ctx, name, FromSettings(c.Settings))
}

// Started is what Autostart reports of one container.
type Started struct {
	Name string `json:"name"`
	Pid  int    `json:"pid,omitempty"`
	// Error is why it could not be started (or stopped).
	Error string `json:"error,omitempty"`
}

// Autostart starts, detached with their settings, every container that
// should run after the host boots and does not run: those with Onboot, the
// restart policies always, and unless-stopped unless acetate stop stopped
// it. They start in BootOrder, lower first; those of one order in
// parallel. A container that fails to start does not stop the others.
func (l *Launcher) Autostart(ctx context.Context) ([]Started, error) {
	cs, err := l.m.List()
	if err != nil {
		return nil, err
	}
	var due []*container.Container
	for _, c := range cs {
		st, err := runtime.LoadState(l.m.RunDir(c.Name))
		if err == nil && st.Running {
			continue
		}
		if wantsBoot(c.Settings, err == nil && st.Stopped) {
			due = append(due, c)
		}
	}
	return inOrder(due, false, func(c *container.Container) Started {
		pid, err := l.Start(ctx, c.Name, FromSettings(c.Settings))
		return report(c.Name, pid, err)
	}), nil
}

// wantsBoot reports whether a container with settings s starts when the
// host boots; stopped says acetate stop stopped it last.
func wantsBoot(s container.Settings, stopped bool) bool {
	switch restartPolicy(s.Restart).Name {
	case runtime.RestartAlways:
		return true
	case runtime.RestartUnlessStopped:
		return !stopped
	}
	return s.Onboot
}

// StopAll stops every running container, as the host shuts down: in the
// reverse of BootOrder, those of one order in parallel, each within
// timeout (negative: its kind's default). A stop leaves the container's
// restart policy's "unless-stopped" unaffected: autostart starts it again
// at the next boot.
func (l *Launcher) StopAll(timeout time.Duration) ([]Started, error) {
	cs, err := l.m.List()
	if err != nil {
		return nil, err
	}
	var running []*container.Container
	for _, c := range cs {
		if st, err := runtime.LoadState(l.m.RunDir(c.Name)); err == nil && st.Running {
			running = append(running, c)
		}
	}
	return inOrder(running, true, func(c *container.Container) Started {
		err := l.Stop(c.Name, timeout)
		if err == nil {
			err = runtime.ForgetStop(l.m.RunDir(c.Name))
		}
		return report(c.Name, 0, err)
	}), nil
}

func report(name string, pid int, err error) Started {
	s := Started{Name: name, Pid: pid}
	if err != nil {
		s.Error = err.Error()
	}
	return s
}

// inOrder calls do for each container, group by group of equal BootOrder
// (ascending, or descending with desc), the members of a group in
// parallel, and returns the reports in that order.
func inOrder(cs []*container.Container, desc bool, do func(*container.Container) Started) []Started {
	slices.SortStableFunc(cs, func(a, b *container.Container) int {
		if desc {
			return b.Settings.BootOrder - a.Settings.BootOrder
		}
		return a.Settings.BootOrder - b.Settings.BootOrder
	})
	out := make([]Started, len(cs))
	for i := 0; i < len(cs); {
		j := i
		for j < len(cs) && cs[j].Settings.BootOrder == cs[i].Settings.BootOrder {
			j++
		}
		var wg sync.WaitGroup
		for k := i; k < j; k++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				out[k] = do(cs[k])
			}()
		}
		wg.Wait()
		i = j
	}
	return out
}

// Enter opens a login shell in the running container name as user ("" for
// root), on a new pseudo-terminal relayed to in and out, as vzctl enter
// does: the user's shell from the container's /etc/passwd (else /bin/sh),
// started as a login shell in the user's home, with HOME, USER, SHELL and
// the caller's TERM. It returns the shell's exit code.
func (l *Launcher) Enter(ctx context.Context, name, user, term string, in io.Reader, out io.Writer) (int, error) {
	c, err := l.m.Get(name)
	if err != nil {
		return -1, err
	}
	if c.Mount == nil {
		return -1, fmt.Errorf("%s: %w", name, runtime.ErrNotRunning)
	}
	uid, gid, err := LookupUser(c.Mount.Target, user)
	if err != nil {
		return -1, err
	}
	env := userEnv(c.Mount.Target, uid)
	if term != "" {
		env = append(env, "TERM="+term)
	}
	shell := firstNonEmpty(envOf(env, "SHELL"), "/bin/sh")
	o := runtime.ExecOptions{
		Env: env, Workdir: envOf(env, "HOME"), User: &uid, Group: &gid,
		Terminal: true, Stdin: in, Stdout: out,
	}
	return l.Exec(ctx, name, []string{shell, "-l"}, o)
}

// envOf returns the value of key in env, "" when unset.
func envOf(env []string, key string) string {
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, key+"="); ok {
			return v
		}
	}
	return ""
}
