package main

import (
	"fmt"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/acetate/acetate/fs/container"
	"github.com/acetate/acetate/runtime"
	"github.com/acetate/acetate/runtime/launch"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

// setReport is what set prints: the settings given, by when they apply.
type setReport struct {
	Name string `json:"name"`
	// Now are the limits applied to the running container at once.
	Now []string `json:"now"`
	// NextStart are the settings that apply at the container's next start.
	NextStart []string `json:"nextStart"`
}

func newSetCmd(a *app) *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "set NAME [flags] [-- CMD ARGS...]",
		Short: "Change a container's settings",
		Long: `Set changes the settings of a container (see acetate create) and keeps
them. On a running container, the limits the kernel changes live
(--memory, --cpus, --pids) are written into its cgroup at once; the other
settings apply at its next start. The output says which did what. --env
adds or replaces variables; a command after -- replaces the command.`,
		Example: `  acetate set web1 --memory 512m --pids 200
  acetate set web1 --hostname www -e MODE=debug -- /usr/sbin/nginx -g 'daemon off;'`,
		Args: minArgs(1, "a container NAME"),
		RunE: a.containerRun(func(c *cobra.Command, m *container.Manager, name string, args []string) error {
			r := setReport{Name: name, Now: []string{}, NextStart: []string{}}
			l := launch.New(m)
			_, err := m.Configure(name, func(s *container.Settings) error {
				given, err := f.apply(c, args, s)
				if err != nil {
					return err
				}
				if len(given) == 0 {
					return usageError{fmt.Errorf("nothing to set: give a flag or a command (acetate set --help)")}
				}
				if err := l.CheckSettings(name, *s); err != nil {
					return err
				}
				return applyLive(l, name, *s, given, &r)
			})
			if err != nil {
				return err
			}
			return a.render(r, table{header: []string{"NAME", "APPLIED NOW", "AT NEXT START"},
				rows: [][]string{{name, listOrDash(r.Now), listOrDash(r.NextStart)}}})
		}),
	}
	f.add(cmd, false)
	return cmd
}

// applyLive sorts the given settings into r.Now and r.NextStart and, when
// the container runs, writes its new limits into its cgroup.
func applyLive(l *launch.Launcher, name string, s container.Settings, given []string, r *setReport) error {
	st, err := l.State(name)
	if err != nil {
		return err
	}
	running := st.State == launch.StateRunning || st.State == launch.StatePaused
	live := false
	for _, g := range given {
		switch {
		case running && slices.Contains(liveSettings, g):
			live = true
			r.Now = append(r.Now, g)
		case slices.Contains(storageSettings, g):
			r.Now = append(r.Now, g)
		default:
			r.NextStart = append(r.NextStart, g)
		}
	}
	if !live {
		return nil
	}
	return l.UpdateLimits(name, launch.FromSettings(s).Limits)
}

func listOrDash(l []string) string {
	if len(l) == 0 {
		return "-"
	}
	return strings.Join(l, ", ")
}

// inspection is what inspect shows of a container: its state and its
// settings.
type inspection struct {
	*launch.Status
	// ExitReason says what ended an exited container: the OOM killer or a
	// signal.
	ExitReason string             `json:"exitReason,omitempty"`
	Settings   container.Settings `json:"settings"`
	// Quota is the differences' use against the disk quota, if any.
	Quota *container.QuotaUsage `json:"quota,omitempty"`
	// Address is the container's address on its bridge network, and the
	// network's name, while it holds a lease.
	Address string `json:"address,omitempty"`
	Network string `json:"network,omitempty"`
}

func newContainerInspectCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "inspect NAME",
		Short: "Show a container's settings and state",
		Long: `Inspect shows a container's state (pid, start time, exit code and what
ended it, mount and driver, its address on a bridge network, its disk use
against its quota) and its settings (command, environment, user, hostname,
limits...: see acetate create and acetate set).`,
		Example: `  acetate inspect web1
  acetate inspect web1 --format json | jq .settings.memory`,
		Args: exactArgs(1),
		RunE: a.containerRun(func(c *cobra.Command, m *container.Manager, name string, _ []string) error {
			ct, err := m.Get(name)
			if err != nil {
				return err
			}
			l := launch.New(m)
			st, err := l.State(name)
			if err != nil {
				return err
			}
			q, err := m.Quota(name)
			if err != nil {
				return err
			}
			in := inspection{Status: st, Settings: ct.Settings, ExitReason: exitReason(st), Quota: q}
			if n, lease, ok, err := l.Networks().Find(name); err == nil && ok {
				in.Address, in.Network = lease.Addr.String(), n.Name
			}
			return a.render(in, inspectTable(in))
		}),
	}
}

// exitReason says what ended an exited container: the OOM killer, or the
// signal of its exit code (128+n for signal n).
func exitReason(st *launch.Status) string {
	switch {
	case st.OOMKilled:
		return "OOM-killed: a process reached the memory limit"
	case st.ExitCode == nil || *st.ExitCode <= 128 || *st.ExitCode > 128+64:
		return ""
	}
	sig := syscall.Signal(*st.ExitCode - 128)
	return fmt.Sprintf("killed by signal %d (%s)", int(sig), unix.SignalName(sig))
}

// inspectTable is inspect's output as FIELD VALUE rows.
func inspectTable(in inspection) table {
	s, st := in.Settings, in.Status
	orDash := func(v string) string {
		if v == "" {
			return "-"
		}
		return v
	}
	when := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return t.Local().Format(time.DateTime)
	}
	code := "-"
	if st.ExitCode != nil {
		code = fmt.Sprint(*st.ExitCode)
	}
	pid := "-"
	if st.Pid > 0 {
		pid = fmt.Sprint(st.Pid)
	}
	rows := [][]string{
		{"name", st.Name}, {"template", st.Template}, {"state", st.State}, {"pid", pid},
		{"started", when(st.Started)}, {"finished", when(st.Finished)}, {"exit code", code},
		{"exit reason", orDash(in.ExitReason)}, {"restarts", fmt.Sprint(st.Restarts)}, {"mounted at", orDash(st.MountedAt)}, {"driver", orDash(st.Driver)},
		{"command", orDash(strings.Join(s.Args, " "))}, {"env", orDash(strings.Join(s.Env, "\n\t"))},
		{"workdir", orDash(s.Workdir)}, {"user", orDash(s.User)}, {"hostname", orDash(s.Hostname)},
		{"memory", limitText(s.Memory > 0, humanBytes(s.Memory))},
		{"cpus", limitText(s.CPUs > 0, fmt.Sprint(s.CPUs))},
		{"pids", pidsText(s.Pids)},
		{"disk", quotaText(in.Quota)},
		{"network", orDash(s.Network)}, {"address", orDash(in.Address)}, {"ip", orDash(s.IP)}, {"publish", orDash(strings.Join(s.Publish, " "))},
		{"read-only", fmt.Sprint(s.ReadOnly)}, {"init", fmt.Sprint(s.Init)},
		{"seccomp", orDash(s.Seccomp)}, {"no-new-privileges", fmt.Sprint(s.NoNewPrivileges)},
		{"settings driver", orDash(s.Driver)},
		{"mounts", orDash(mountsText(s.Mounts))},
	}
	return table{header: []string{"FIELD", "VALUE"}, rows: rows}
}

// quotaText shows the use against a disk quota: "12.0M of 1.0G, 300 of
// 1000 inodes".
func quotaText(q *container.QuotaUsage) string {
	if q == nil {
		return "none"
	}
	v := humanBytes(q.Used) + " of " + humanBytes(q.Disk)
	if q.Inodes > 0 {
		v += fmt.Sprintf(", %d of %d inodes", q.UsedInodes, q.Inodes)
	}
	return v
}

func limitText(set bool, v string) string {
	if !set {
		return "none"
	}
	return v
}

func pidsText(n int64) string {
	switch {
	case n == 0:
		return fmt.Sprintf("%d (default)", runtime.DefaultPids)
	case n < 0:
		return "none"
	}
	return fmt.Sprint(n)
}
