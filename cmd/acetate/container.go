package main

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/acetate/acetate/fs/container"
	"github.com/acetate/acetate/runtime"
	"github.com/acetate/acetate/runtime/launch"
	"github.com/acetate/acetate/templates"
	"github.com/spf13/cobra"
)

// containers opens the container manager of the store, which asks the
// launcher's state whether a container runs.
func (a *app) containers() (*container.Manager, error) {
	st, err := a.store()
	if err != nil {
		return nil, err
	}
	return a.containersOf(st)
}

// containersOf is containers for the store st.
func (a *app) containersOf(st *templates.Store) (*container.Manager, error) {
	m, err := container.Open(st)
	if err != nil {
		return nil, err
	}
	m.SetRunning(func(name string) (int, error) {
		rs, err := runtime.LoadState(m.RunDir(name))
		switch {
		case errors.Is(err, fs.ErrNotExist): // it never ran
			return 0, nil
		case err != nil:
			return 0, err
		case rs.Running:
			return rs.Pid, nil
		}
		return 0, nil
	})
	return m, nil
}

// containerName checks a container name given on the command line.
func containerName(s string) (string, error) {
	if err := container.ValidateName(s); err != nil {
		return "", usageError{err}
	}
	return s, nil
}

// newContainerCmds returns the container lifecycle commands.
func newContainerCmds(a *app) []*cobra.Command {
	return []*cobra.Command{newCreateCmd(a), newCloneCmd(a), newMountCmd(a), newUnmountCmd(a),
		newDiffCmd(a), newCommitCmd(a), newResetCmd(a), newRebaseCmd(a), newRmCmd(a), newSetCmd(a), newContainerInspectCmd(a)}
}

// containerRun builds a command's RunE that validates NAME (args[0]),
// opens the manager and runs f.
func (a *app) containerRun(f func(c *cobra.Command, m *container.Manager, name string, args []string) error) func(*cobra.Command, []string) error {
	return func(c *cobra.Command, args []string) error {
		name, err := containerName(args[0])
		if err != nil {
			return err
		}
		m, err := a.containers()
		if err != nil {
			return err
		}
		return f(c, m, name, args[1:])
	}
}

func (a *app) renderContainer(c *container.Container) error {
	return a.render(c, containerTable([]*container.Container{c}))
}

func containerTable(cs []*container.Container) table {
	t := table{header: []string{"NAME", "TEMPLATE", "LAYERS", "CREATED", "MOUNTED AT"}}
	for _, c := range cs {
		at := "-"
		if c.Mount != nil {
			at = c.Mount.Target + " (" + c.Mount.Driver + ")"
		}
		t.rows = append(t.rows, []string{c.Name, c.Template, fmt.Sprint(len(c.Layers)),
			c.Created.Local().Format(time.DateTime), at})
	}
	return t
}

func newCreateCmd(a *app) *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "create NAME --from TEMPLATE[:TAG] [flags] [-- CMD ARGS...]",
		Short: "Create a container from a template, with its settings",
		Long: `Create makes a container: the template's layers plus an empty upper
directory for the container's own differences. It copies no template file,
so it takes the same time whatever the template's size.

The flags and the command are the container's settings, kept with it:
acetate start NAME and acetate run NAME use them, acetate set changes them
and acetate inspect shows them.`,
		Example: `  acetate create web1 --from debian:12
  acetate create web1 --from debian:12 --memory 256m --pids 100 -e MODE=prod --hostname web -- sleep infinity
  acetate create web1 --from debian:12 && acetate mount web1`,
		Args: minArgs(1, "a container NAME"),
		RunE: a.containerRun(func(c *cobra.Command, m *container.Manager, name string, args []string) error {
			if f.from == "" {
				return usageError{fmt.Errorf("--from TEMPLATE[:TAG] is required")}
			}
			if _, err := parseRef(f.from); err != nil {
				return err
			}
			var s container.Settings
			if _, err := f.apply(c, args, &s); err != nil {
				return err
			}
			if err := launch.New(m).CheckSettings(name, s); err != nil {
				return err
			}
			ct, err := m.Create(name, f.from, container.WithSettings(s))
			if err != nil {
				return err
			}
			return a.renderContainer(ct)
		}),
	}
	f.add(cmd, false)
	cmd.Flags().StringVar(&f.from, "from", "", "template to create the container from")
	return cmd
}

func newCloneCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "clone SRC NEW",
		Short: "Create a container with SRC's template and a copy of SRC's differences",
		Example: `  acetate clone web1 web2
  acetate clone golden test1 && acetate mount test1`,
		Args: exactArgs(2),
		RunE: a.containerRun(func(c *cobra.Command, m *container.Manager, src string, args []string) error {
			name, err := containerName(args[0])
			if err != nil {
				return err
			}
			ct, err := m.Clone(src, name)
			if err != nil {
				return err
			}
			return a.renderContainer(ct)
		}),
	}
}

func newMountCmd(a *app) *cobra.Command {
	var driver, at string
	cmd := &cobra.Command{
		Use:   "mount NAME [--driver overlay|fuse] [--at DIR]",
		Short: "Mount a container's root",
		Long: `Mount shows the container's root — its template with its own differences
on top — at DIR (default: <root>/containers/NAME/rootfs). Writes go to the
container's upper directory, never to the template.

Drivers: ` + strings.Join(container.DriverNames(), ", ") + `. The overlay driver (kernel
overlayfs) is the default; its mount stays after acetate exits. Both show
the same tree, with one difference: a write to one name of a template's
hardlink group splits the group under the overlay driver (the other names
keep the template's content, in another inode), while the fuse driver
keeps the group: one inode, all names see the write.`,
		Example: `  acetate mount web1
  acetate mount web1 --at /mnt/web1
  acetate mount web1 --driver fuse`,
		Args: exactArgs(1),
		RunE: a.containerRun(func(c *cobra.Command, m *container.Manager, name string, _ []string) error {
			if driver != "" {
				if !slices.Contains(container.DriverNames(), driver) {
					return usageError{fmt.Errorf("--driver %q: use one of %s", driver, strings.Join(container.DriverNames(), ", "))}
				}
			}
			ct, err := m.Mount(c.Context(), name, driver, at)
			if err != nil {
				return err
			}
			if a.format == "table" {
				fmt.Fprintln(a.stdout, ct.Mount.Target)
				return nil
			}
			return a.renderContainer(ct)
		}),
	}
	cmd.Flags().StringVar(&driver, "driver", "", "union driver: "+strings.Join(container.DriverNames(), " or ")+" (default: the container's --driver setting, else overlay)")
	cmd.Flags().StringVar(&at, "at", "", "mount point (default: <root>/containers/NAME/rootfs)")
	return cmd
}

func newUnmountCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "unmount NAME",
		Aliases: []string{"umount"},
		Short:   "Unmount a container's root",
		Long:    "Unmount unmounts the container's root. A running container is refused: stop it first.",
		Example: `  acetate unmount web1`,
		Args:    exactArgs(1),
		RunE: a.containerRun(func(c *cobra.Command, m *container.Manager, name string, _ []string) error {
			return m.Unmount(name)
		}),
	}
}

func newDiffCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "diff NAME",
		Short: "Show what a container added (A), changed (C) and deleted (D)",
		Long: `Diff lists the paths in which the container differs from its template, as
docker diff does: A added, C changed, D deleted (a deleted directory is
listed once), with the size of the file in the container (in the template
for a deletion). A name holding a newline, a tab, a control character, a
double quote, a backslash or bytes that are not UTF-8 is printed quoted and
escaped as a Go string ("a\nb"), so one line is always one entry; --format
json gives names as they are.`,
		Example: `  acetate diff web1
  acetate diff web1 --format json | jq -r '.[] | select(.kind=="A") | .path'`,
		Args: exactArgs(1),
		RunE: a.containerRun(func(c *cobra.Command, m *container.Manager, name string, _ []string) error {
			ch, err := m.Diff(name)
			if err != nil {
				return err
			}
			if a.format == "json" {
				return a.render(ch, table{})
			}
			for _, x := range ch {
				fmt.Fprintf(a.stdout, "%s %s\t%s\n", x.Kind, quoteName(x.Path), humanBytes(x.Size))
			}
			return nil
		}),
	}
}

func newCommitCmd(a *app) *cobra.Command {
	var replace bool
	cmd := &cobra.Command{
		Use:   "commit NAME NEW[:TAG]",
		Short: "Make a template of a container: its template plus its differences",
		Long: `Commit stores the container's differences as one new layer (file content
deduplicated against the store) on top of the container's template layers,
and points NEW[:TAG] at the result. The container is left as it is. A
running container is refused (stop it first): it would change its files
while they are read. An existing NEW[:TAG] is refused unless --replace, and
NEW[:TAG] cannot be the container's own template (it would be its own
base).`,
		Example: `  acetate commit web1 web:v2
  acetate create web2 --from web:v2`,
		Args: exactArgs(2),
		RunE: a.containerRun(func(c *cobra.Command, m *container.Manager, name string, args []string) error {
			r, err := parseRef(args[0])
			if err != nil {
				return err
			}
			ct, err := m.Get(name)
			if err != nil {
				return err
			}
			if ct.Template == r.String() {
				return fmt.Errorf("commit %s %s: %s is %s's template: %w; commit to another name", name, r, r, name, templates.ErrSelfBase)
			}
			if err := beforeStaging(m.Store(), r, replace); err != nil {
				return err
			}
			p, done := a.progress("committing "+name, true)
			ctx, finish := interruptible(c.Context(), "nothing was committed, and the files this commit staged are removed")
			t, err := m.Commit(ctx, name, r, p)
			done()
			if err := finish(err); err != nil {
				return err
			}
			return a.renderTemplate(t)
		}),
	}
	addReplaceFlag(cmd, &replace)
	return cmd
}

func newResetCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "reset NAME",
		Short:   "Drop all of a container's differences",
		Long:    "Reset empties the container's upper directory. The container must be stopped and unmounted.",
		Example: `  acetate unmount web1 && acetate reset web1`,
		Args:    exactArgs(1),
		RunE: a.containerRun(func(c *cobra.Command, m *container.Manager, name string, _ []string) error {
			return m.Reset(name)
		}),
	}
}

func newRebaseCmd(a *app) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "rebase NAME TEMPLATE[:TAG] [--force]",
		Short: "Move a container onto another template, keeping its differences",
		Long: `Rebase puts the container on TEMPLATE (a patched base, say): files it never
touched now come from TEMPLATE, files it changed stay its own. It lists the
files changed on both sides: the container's version is kept for those.
The container must be stopped and unmounted.

A container made from an application template (one published with --on, or
committed from a container) has layers above its base: rebasing it onto a
TEMPLATE that stands on fewer bases (the bare patched base) would drop the
application, and is refused unless --force.`,
		Example: `  acetate rebase web1 debian:12.8
  acetate rebase app1 web:2        # web:2: the application on the patched base`,
		Args: exactArgs(2),
		RunE: a.containerRun(func(c *cobra.Command, m *container.Manager, name string, args []string) error {
			to, err := parseRef(args[0])
			if err != nil {
				return err
			}
			if !force {
				if err := refuseDroppedLayers(m, name, to); err != nil {
					return err
				}
			}
			r, err := m.Rebase(name, args[0])
			if err != nil {
				return err
			}
			if a.format == "json" {
				return a.render(r, table{})
			}
			a.printRebase(fmt.Sprintf("%s: %s -> %s, %d file(s) changed on both sides (kept the container's)",
				name, r.From, r.To, len(r.Conflicts)), r.Conflicts)
			return nil
		}),
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "rebase even when TEMPLATE lacks the layers above the container's base")
	return cmd
}

// refuseDroppedLayers returns an error when rebasing container name onto
// template to would drop layers: when to stands on fewer bases than the
// container's template (web:1 on debian:12 onto debian:12.1 drops web's
// layer; onto web:2 on debian:12.1 it does not).
func refuseDroppedLayers(m *container.Manager, name string, to templates.Ref) error {
	ct, err := m.Get(name)
	if err != nil {
		return err
	}
	if _, err := m.Store().Get(to); err != nil {
		return err
	}
	from, onto := baseChain(m.Store(), ct.Template), baseChain(m.Store(), to.String())
	if len(onto) >= len(from) {
		return nil
	}
	return fmt.Errorf("%s is from %s; %s stands on fewer bases: rebasing would drop the layers of %s; rebase onto a template that has them (publish it with --on the new base), or use --force",
		name, strings.Join(from, " on "), strings.Join(onto, " on "), strings.Join(from[:len(from)-len(onto)], " and "))
}

// baseChain is ref followed by its base, its base's base, ...; a base that
// no longer exists ends the chain.
func baseChain(st *templates.Store, ref string) []string {
	chain := []string{ref}
	for len(chain) <= 16 { // deeper is a loop
		t, err := st.Lookup(chain[len(chain)-1])
		if err != nil || t.Base == "" {
			break
		}
		chain = append(chain, t.Base)
	}
	return chain
}

func newRmCmd(a *app) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "rm NAME... [--force]",
		Short: "Remove containers and their differences",
		Long: `Rm removes containers. A running or mounted container is refused unless
--force, which stops it (SIGTERM, then SIGKILL after 10s) and unmounts it
first. Every name is checked before any container is removed: an unknown,
running or mounted one (without --force) removes none. The template's
layers stay until gc.`,
		Example: `  acetate rm web1
  acetate rm web1 web2 web3
  acetate rm --force web1`,
		Args: minArgs(1, "at least one container NAME"),
		RunE: func(c *cobra.Command, args []string) error {
			l, m, err := a.launcher()
			if err != nil {
				return err
			}
			running := map[string]bool{}
			var names []string
			for _, name := range args {
				if _, err := containerName(name); err != nil {
					return err
				}
				if slices.Contains(names, name) {
					continue
				}
				names = append(names, name)
				st, err := l.State(name)
				if err != nil {
					return err
				}
				running[name] = st.Alive()
				switch {
				case force:
				case running[name]:
					return fmt.Errorf("%s is running (pid %d): stop it first, or use --force", name, st.Pid)
				case st.MountedAt != "":
					return fmt.Errorf("%s is mounted at %s: unmount it first, or use --force", name, st.MountedAt)
				}
			}
			for _, name := range names {
				if running[name] {
					if err := l.Stop(name, 10*time.Second); err != nil {
						return err
					}
				}
				if err := l.Release(name); err != nil { // its addresses
					return err
				}
				if err := m.Remove(name, force); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "stop a running container and unmount a mounted one first")
	return cmd
}

// printRebase prints a rebase's summary and the paths changed on both
// sides, one a line.
func (a *app) printRebase(summary string, conflicts []string) {
	fmt.Fprintln(a.stdout, summary)
	for _, p := range conflicts {
		fmt.Fprintln(a.stdout, "both changed:", quoteName(p))
	}
}

// quoteName returns a path from a container as it can be printed on one
// line: as it is, or quoted and escaped as a Go string (as ls
// --quoting-style=c does) when it holds anything %q escapes. The attack it
// stops: a container names a file "x\nD /etc/passwd" and the operator
// reads a deletion that is not there (or a terminal escape sequence runs).
// A name printed bare never holds a double quote, so a quoted one is
// never ambiguous.
func quoteName(p string) string {
	if q := strconv.Quote(p); q[1:len(q)-1] != p {
		return q
	}
	return p
}
