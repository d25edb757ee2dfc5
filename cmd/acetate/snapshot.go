package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/acetate/acetate/fs/container"
	"github.com/acetate/acetate/runtime/launch"
	"github.com/spf13/cobra"
)

func newSnapshotCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "snapshot",
		Short: "Take, list, restore and remove snapshots of a container",
		Long: `A snapshot is a container's differences (its upper directory, entry by
entry) stored as a layer in the store, plus its settings. File content is
shared with everything else in the store, so a snapshot costs the files
changed since the last one, and their metadata. A running container is
frozen while its differences are read (the time is shown); a stopped one
is read at once. gc keeps what snapshots use; rm NAME removes them.`,
		Example: `  acetate snapshot create web1 before-upgrade
  acetate snapshot ls web1
  acetate snapshot restore web1 before-upgrade --stop
  acetate snapshot rm web1 before-upgrade`,
	}
	cmd.AddCommand(newSnapshotCreateCmd(a), newSnapshotLsCmd(a), newSnapshotRestoreCmd(a), newSnapshotRmCmd(a))
	return cmd
}

func newSnapshotCreateCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "create NAME [SNAP]",
		Short: "Snapshot a container (frozen for the capture when it runs)",
		Long: `Create stores container NAME's differences and settings as snapshot SNAP
(default: the time, as 20261201-083000). A running container's processes
are frozen while its upper directory is read, so that the snapshot holds a
state the container was in (no file half-written); the FROZEN column says
for how long. A paused container stays paused.`,
		Example: `  acetate snapshot create web1
  acetate snapshot create web1 before-upgrade --format json`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return usageError{errors.New("requires a container NAME and at most one SNAP name")}
			}
			return nil
		},
		RunE: a.containerRun(func(c *cobra.Command, m *container.Manager, name string, args []string) error {
			snap := time.Now().UTC().Format("20060102-150405")
			if len(args) == 1 {
				snap = args[0]
			}
			if err := container.ValidateName(snap); err != nil {
				return usageError{fmt.Errorf("snapshot name: %w", err)}
			}
			l := launch.New(m)
			p, done := a.progress("snapshot of "+name, true)
			ctx, finish := interruptible(c.Context(), "no snapshot was taken, and the files it staged are removed at the next gc")
			s, err := m.CreateSnapshot(ctx, name, snap, container.SnapshotOptions{Progress: p,
				Freeze: func(capture func() error) (time.Duration, error) { return l.Frozen(name, capture) }})
			done()
			if err := finish(err); err != nil {
				return err
			}
			return a.render(s, snapshotTable([]*container.Snapshot{s}))
		}),
	}
}

// snapshotTable shows snapshots a row each.
func snapshotTable(list []*container.Snapshot) table {
	t := table{header: []string{"SNAPSHOT", "CREATED", "FILES", "SIZE", "FROZEN", "TEMPLATE"}}
	for _, s := range list {
		frozen := "-"
		if s.Frozen > 0 {
			frozen = s.Frozen.Round(time.Microsecond).String()
		}
		t.rows = append(t.rows, []string{s.Name, s.Created.Local().Format(time.DateTime), fmt.Sprint(s.Files),
			humanBytes(s.Bytes), frozen, s.Container.Template})
	}
	return t
}

func newSnapshotLsCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "ls NAME",
		Short:   "List a container's snapshots, oldest first",
		Example: `  acetate snapshot ls web1 --format json`,
		Args:    exactArgs(1),
		RunE: a.containerRun(func(c *cobra.Command, m *container.Manager, name string, _ []string) error {
			list, err := m.Snapshots(name)
			if err != nil {
				return err
			}
			return a.render(list, snapshotTable(list))
		}),
	}
}

func newSnapshotRestoreCmd(a *app) *cobra.Command {
	var stop bool
	cmd := &cobra.Command{
		Use:   "restore NAME SNAP [--stop]",
		Short: "Put a container back as a snapshot has it",
		Long: `Restore rebuilds container NAME's differences exactly as snapshot SNAP holds
them (every file, deletion, xattr, hardlink and hole) and puts its settings
back. The container must be stopped: a running one is refused unless
--stop, which stops it first, as acetate stop does. It is left
stopped. A container mounted with acetate mount must be unmounted.`,
		Example: `  acetate snapshot restore web1 before-upgrade
  acetate snapshot restore web1 before-upgrade --stop && acetate start web1`,
		Args: exactArgs(2),
		RunE: a.containerRun(func(c *cobra.Command, m *container.Manager, name string, args []string) error {
			if _, err := m.GetSnapshot(name, args[0]); err != nil {
				return err
			}
			l := launch.New(m)
			st, err := l.State(name)
			if err != nil {
				return err
			}
			if st.Alive() {
				if !stop {
					return fmt.Errorf("%s is %s (pid %d): stop it first, or use --stop", name, st.State, st.Pid)
				}
				if err := l.Stop(name, -1); err != nil { // the kind of container's default time
					return err
				}
			}
			p, done := a.progress("restoring "+name, true)
			ctx, finish := interruptible(c.Context(), "the container is as it was")
			err = m.RestoreSnapshot(ctx, name, args[0], p)
			done()
			return finish(err)
		}),
	}
	cmd.Flags().BoolVar(&stop, "stop", false, "stop the container first when it runs")
	return cmd
}

func newSnapshotRmCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "rm NAME SNAP...",
		Short: "Remove snapshots of a container",
		Long: `Rm removes snapshots. Every SNAP is checked first: an unknown one removes
none. What only they used leaves the store at the next gc.`,
		Example: `  acetate snapshot rm web1 before-upgrade && acetate gc`,
		Args:    minArgs(2, "a container NAME and at least one SNAP"),
		RunE: a.containerRun(func(c *cobra.Command, m *container.Manager, name string, snaps []string) error {
			for _, s := range snaps {
				if _, err := m.GetSnapshot(name, s); err != nil {
					return err
				}
			}
			for _, s := range snaps {
				if err := m.RemoveSnapshot(name, s); err != nil {
					return err
				}
			}
			return nil
		}),
	}
}
