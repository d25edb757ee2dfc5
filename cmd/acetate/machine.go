package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/acetate/acetate/fs/container"
	"github.com/acetate/acetate/runtime"
	"github.com/acetate/acetate/runtime/console"
	"github.com/acetate/acetate/runtime/launch"
	"github.com/spf13/cobra"
)

// newMachineCmds returns the commands that treat a container as a machine:
// its console, a login shell, signals, restart and autostart.
func newMachineCmds(a *app) []*cobra.Command {
	return []*cobra.Command{newConsoleCmd(a), newEnterCmd(a), newKillCmd(a), newRestartCmd(a), newAutostartCmd(a)}
}

func newConsoleCmd(a *app) *cobra.Command {
	var tty string
	cmd := &cobra.Command{
		Use:   "console NAME",
		Short: "Attach to a booted container's console",
		Long: `Console attaches the terminal to the console of a booted container (or,
with --tty N, to its /dev/ttyN): it prints what the console showed since the
boot (its last 64 KiB), then relays both ways. Type Ctrl-] to detach; the
container keeps running. One client at a time per console.`,
		Example: `  acetate console web1
  acetate console web1 --tty 1`,
		Args: exactArgs(1),
		RunE: a.containerRun(func(c *cobra.Command, m *container.Manager, name string, _ []string) error {
			return a.attachConsole(launch.New(m), name, tty)
		}),
	}
	cmd.Flags().StringVar(&tty, "tty", "", "attach to /dev/ttyN instead of the console (N or ttyN)")
	return cmd
}

// attachConsole attaches the caller's terminal to a console of container
// name; detaching is no error.
func (a *app) attachConsole(l *launch.Launcher, name, tty string) error {
	if tty != "" && tty[0] >= '0' && tty[0] <= '9' {
		tty = "tty" + tty
	}
	if isTerminal(a.stdin) {
		fmt.Fprintf(a.stderr, "Connected to the %s of %s. Type Ctrl-] to detach.\r\n", orConsole(tty), name)
	}
	err := l.Console(name, tty, a.stdin, a.stdout, console.DefaultDetachKey)
	if errors.Is(err, console.ErrDetached) {
		fmt.Fprintf(a.stderr, "\r\nDetached from %s.\n", name)
		return nil
	}
	return err
}

func orConsole(tty string) string {
	if tty == "" {
		return "console"
	}
	return tty
}

func newEnterCmd(a *app) *cobra.Command {
	var user string
	cmd := &cobra.Command{
		Use:   "enter NAME",
		Short: "Open a login shell in a running container",
		Long: `Enter opens a login shell in a running container, as vzctl enter does: the
user's shell from the container's /etc/passwd (root's by default) on a new
pseudo-terminal, in the user's home, with HOME, USER, SHELL and your TERM. It
exits with the shell's exit code.`,
		Example: `  acetate enter web1
  acetate enter web1 --user www-data`,
		Args: exactArgs(1),
		RunE: a.containerRun(func(c *cobra.Command, m *container.Manager, name string, _ []string) error {
			if !isTerminal(a.stdin) {
				return usageError{errors.New("enter needs a terminal on standard input (use acetate exec for commands)")}
			}
			code, err := launch.New(m).Enter(c.Context(), name, user, os.Getenv("TERM"), a.stdin, a.stdout)
			if err != nil {
				return launchFailed(err)
			}
			return exitWith(code)
		}),
	}
	cmd.Flags().StringVarP(&user, "user", "u", "", "user to log in as (default root)")
	return cmd
}

func newKillCmd(a *app) *cobra.Command {
	var sig string
	cmd := &cobra.Command{
		Use:   "kill NAME... [-s SIGNAL]",
		Short: "Send a signal to running containers",
		Long: `Kill sends a signal (default SIGKILL) to the init of each container: a
command's init passes it on to the command; a booted container's init is the
OS's own (SIGRTMIN+3 halts systemd, SIGINT reboots sysvinit).`,
		Example: `  acetate kill web1
  acetate kill -s HUP web1
  acetate kill -s RTMIN+3 web1`,
		Args: minArgs(1, "at least one container NAME"),
		RunE: func(c *cobra.Command, args []string) error {
			s, err := runtime.ParseSignal(sig)
			if err != nil {
				return usageError{fmt.Errorf("--signal: %w", err)}
			}
			return a.eachContainer(args, func(l *launch.Launcher, name string) error { return l.Kill(name, s) })
		},
	}
	cmd.Flags().StringVarP(&sig, "signal", "s", "KILL", "signal: a name (TERM, SIGTERM, RTMIN+3) or a number")
	return cmd
}

// eachContainer runs f on each container NAME given, in order, and stops
// at the first error.
func (a *app) eachContainer(names []string, f func(l *launch.Launcher, name string) error) error {
	l, _, err := a.launcher()
	if err != nil {
		return err
	}
	for _, name := range names {
		if _, err := containerName(name); err != nil {
			return err
		}
		if err := f(l, name); err != nil {
			return err
		}
	}
	return nil
}

// stopTimeout is a --time flag: seconds, or -1 for the container's kind's
// default.
func stopTimeout(seconds int) time.Duration {
	if seconds < 0 {
		return -1
	}
	return time.Duration(seconds) * time.Second
}

// timeHelp is the help of stop and restart's --time.
var timeHelp = fmt.Sprintf("seconds to wait for the container to stop before killing it\n(default %d for a booted container, %d for a command)",
	int(runtime.DefaultBootStopTimeout.Seconds()), int(runtime.DefaultStopTimeout.Seconds()))

func newRestartCmd(a *app) *cobra.Command {
	var seconds int
	cmd := &cobra.Command{
		Use:   "restart NAME...",
		Short: "Stop containers and start them again with their settings",
		Example: `  acetate restart web1
  acetate restart --time 5 web1 web2`,
		Args: minArgs(1, "at least one container NAME"),
		RunE: func(c *cobra.Command, args []string) error {
			return a.eachContainer(args, func(l *launch.Launcher, name string) error {
				pid, err := l.Restart(c.Context(), name, stopTimeout(seconds))
				if err == nil && a.format != "json" {
					fmt.Fprintf(a.stdout, "%s restarted, pid %d\n", name, pid)
				}
				return err
			})
		},
	}
	cmd.Flags().IntVarP(&seconds, "time", "t", -1, timeHelp)
	return cmd
}

func newAutostartCmd(a *app) *cobra.Command {
	var stop bool
	var seconds int
	cmd := &cobra.Command{
		Use:   "autostart [--stop]",
		Short: "Start the containers that start with the host (or stop them all)",
		Long: `Autostart starts every container that should run after the host boots and
does not run: those created or set with --onboot, and those whose restart
policy is always, or unless-stopped when acetate stop did not stop them. They
start in --boot-order, lower first, those of one order in parallel; their
mounts are made again (a mount that died with the host is cleared first).
With --stop, it stops every running container instead, in the reverse
order, as the host shuts down.

The host's init calls these: install docs/host/acetate.service (systemd) or
docs/host/acetate.init (sysvinit), see the README. It exits 1 when any
container failed to start or stop, after trying all of them.`,
		Example: `  acetate create web1 --from debian:12 --onboot --boot-order 10
  acetate autostart
  acetate autostart --stop --time 30`,
		Args: exactArgs(0),
		RunE: func(c *cobra.Command, _ []string) error {
			l, _, err := a.launcher()
			if err != nil {
				return err
			}
			var out []launch.Started
			if stop {
				out, err = l.StopAll(stopTimeout(seconds))
			} else {
				out, err = l.Autostart(c.Context())
			}
			if err != nil {
				return err
			}
			return a.renderStarted(out)
		},
	}
	cmd.Flags().BoolVar(&stop, "stop", false, "stop every running container instead")
	cmd.Flags().IntVarP(&seconds, "time", "t", -1, timeHelp)
	return cmd
}

// renderStarted prints autostart's reports, and fails when any failed.
func (a *app) renderStarted(out []launch.Started) error {
	t := table{header: []string{"NAME", "PID", "RESULT"}}
	failed := 0
	for _, s := range out {
		result, pid := "ok", "-"
		if s.Pid > 0 {
			pid = fmt.Sprint(s.Pid)
		}
		if s.Error != "" {
			result, failed = s.Error, failed+1
		}
		t.rows = append(t.rows, []string{s.Name, pid, result})
	}
	if err := a.render(out, t); err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d containers failed", failed, len(out))
	}
	return nil
}
