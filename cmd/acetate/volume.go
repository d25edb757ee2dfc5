package main

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/acetate/acetate/fs/container"
	"github.com/acetate/acetate/fs/volume"
	"github.com/acetate/acetate/runtime"
	"github.com/spf13/cobra"
)

// setVolumes replaces the binds and volumes of s by the -v values,
// keeping its tmpfs mounts; -v "" leaves none.
func (f *runFlags) setVolumes(s *container.Settings) error {
	keep := slices.DeleteFunc(slices.Clone(s.Mounts), func(m container.Mount) bool { return m.Type != container.MountTmpfs })
	var ms []container.Mount
	for _, v := range f.volumes {
		if v == "" {
			continue
		}
		m, err := parseVolume(v)
		if err != nil {
			return fmt.Errorf("--volume %q: %w", v, err)
		}
		ms = append(ms, m)
	}
	s.Mounts = append(ms, keep...)
	return checkTargets(s.Mounts)
}

// setTmpfs replaces the tmpfs mounts of s by the --tmpfs values, keeping
// its binds and volumes; --tmpfs "" leaves none.
func (f *runFlags) setTmpfs(s *container.Settings) error {
	ms := slices.DeleteFunc(slices.Clone(s.Mounts), func(m container.Mount) bool { return m.Type == container.MountTmpfs })
	for _, v := range f.tmpfs {
		if v == "" {
			continue
		}
		m, err := parseTmpfs(v)
		if err != nil {
			return fmt.Errorf("--tmpfs %q: %w", v, err)
		}
		ms = append(ms, m)
	}
	s.Mounts = ms
	return checkTargets(s.Mounts)
}

// mountsText shows mounts as their flags give them, one a line.
func mountsText(ms []container.Mount) string {
	var lines []string
	for _, m := range ms {
		l := m.Source + ":" + m.Target
		switch {
		case m.Type == container.MountTmpfs && m.Size > 0:
			l = fmt.Sprintf("tmpfs %s:size=%s", m.Target, humanBytes(m.Size))
		case m.Type == container.MountTmpfs:
			l = "tmpfs " + m.Target
		case m.ReadOnly:
			l += ":ro"
		}
		lines = append(lines, l)
	}
	return strings.Join(lines, "\n\t")
}

// parseVolume parses -v HOSTPATH:CPATH[:ro|rw] (a bind) or
// NAME:CPATH[:ro|rw] (a named volume).
func parseVolume(v string) (container.Mount, error) {
	parts := strings.Split(v, ":")
	m := container.Mount{Type: container.MountBind}
	switch {
	case len(parts) == 3 && (parts[2] == "ro" || parts[2] == "rw"):
		m.ReadOnly = parts[2] == "ro"
	case len(parts) != 2:
		return m, errors.New("use HOSTPATH:PATH[:ro] or VOLUME:PATH[:ro]")
	}
	m.Source, m.Target = parts[0], parts[1]
	if !path.IsAbs(m.Source) {
		if err := volume.ValidateName(m.Source); err != nil {
			return m, fmt.Errorf("%w (or give an absolute host path)", err)
		}
		m.Type = container.MountVolume
	}
	return m, nil
}

// parseTmpfs parses --tmpfs CPATH[:size=N].
func parseTmpfs(v string) (container.Mount, error) {
	target, opts, _ := strings.Cut(v, ":")
	m := container.Mount{Type: container.MountTmpfs, Target: target}
	if opts == "" {
		return m, nil
	}
	size, ok := strings.CutPrefix(opts, "size=")
	if !ok {
		return m, errors.New("the only option is size=N (64m, 1g)")
	}
	n, err := runtime.ParseMemory(size)
	if err != nil || n <= 0 {
		return m, fmt.Errorf("size %q: give a size such as 64m or 1g", size)
	}
	m.Size = n
	return m, nil
}

// checkTargets refuses mounts the launcher would refuse, and two on one
// target.
func checkTargets(ms []container.Mount) error {
	seen := map[string]bool{}
	for _, m := range ms {
		if err := runtime.CheckTarget(m.Target); err != nil {
			return err
		}
		t := path.Clean(m.Target)
		if seen[t] {
			return fmt.Errorf("two mounts on %s", t)
		}
		seen[t] = true
	}
	return nil
}

func newVolumeCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "volume",
		Short: "Manage named volumes: directories that containers mount and that outlive them",
		Long: `A named volume is a directory in the store (<root>/volumes/NAME/data) that
containers mount with -v NAME:/path[:ro] (create, set, run, start). It is made
by volume create or by the first start of a container that names it, is
shared by every container that mounts it, is not part of a container's
diff, commit or snapshots, and is removed only by volume rm, which refuses
while a container's settings name it.`,
		Example: `  acetate volume create pgdata
  acetate run --from debian:12 db -v pgdata:/var/lib/postgresql -- ...
  acetate volume ls
  acetate volume rm pgdata`,
	}
	cmd.AddCommand(newVolumeCreateCmd(a), newVolumeLsCmd(a), newVolumeRmCmd(a), newVolumeInspectCmd(a))
	return cmd
}

// volumes opens the store's volumes and its containers, whose settings
// say who uses which volume.
func (a *app) volumes() (*volume.Store, *container.Manager, error) {
	m, err := a.containers()
	if err != nil {
		return nil, nil, err
	}
	return volume.Open(m.Store().Layers.Root()), m, nil
}

// volumeUsers maps each volume name to the containers that mount it:
// whose settings name it, or that run with it mounted (run and start
// flags apply to one run only).
func volumeUsers(vs *volume.Store, m *container.Manager) (map[string][]string, error) {
	cs, err := m.List()
	if err != nil {
		return nil, err
	}
	users := map[string][]string{}
	use := func(v, c string) {
		if v != "" && !slices.Contains(users[v], c) {
			users[v] = append(users[v], c)
		}
	}
	for _, c := range cs {
		for _, mt := range c.Settings.Mounts {
			if mt.Type == container.MountVolume {
				use(mt.Source, c.Name)
			}
		}
		if st, err := runtime.LoadState(m.RunDir(c.Name)); err == nil && st.Running {
			for _, mt := range st.Spec.Mounts {
				use(vs.NameOf(mt.Source), c.Name)
			}
		}
	}
	return users, nil
}

// volumeNames lists the store's volumes, for completion; none when there
// is no store.
func volumeNames(a *app) []string {
	vs, _, err := a.volumes()
	if err != nil {
		return nil
	}
	return namesOf(vs.List, func(v *volume.Volume) string { return v.Name })
}

// volumeName checks a volume name given on the command line.
func volumeName(s string) error {
	if err := volume.ValidateName(s); err != nil {
		return usageError{err}
	}
	return nil
}

// volumeInfo is what ls and inspect show of a volume.
type volumeInfo struct {
	*volume.Volume
	UsedBy []string `json:"usedBy"`
}

func newVolumeCreateCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "create NAME",
		Short:   "Create a named volume",
		Example: `  acetate volume create pgdata`,
		Args:    exactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if err := volumeName(args[0]); err != nil {
				return err
			}
			vs, _, err := a.volumes()
			if err != nil {
				return err
			}
			v, err := vs.Create(args[0])
			if err != nil {
				return err
			}
			if a.format == "json" {
				return a.render(volumeInfo{v, nil}, table{})
			}
			fmt.Fprintln(a.stdout, v.Name)
			return nil
		},
	}
}

func newVolumeLsCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "ls",
		Short: "List named volumes with their size and the containers that mount them",
		Example: `  acetate volume ls
  acetate volume ls --format json | jq -r '.[].name'`,
		Args: exactArgs(0),
		RunE: func(c *cobra.Command, args []string) error {
			vs, m, err := a.volumes()
			if err != nil {
				return err
			}
			list, err := vs.List()
			if err != nil {
				return err
			}
			users, err := volumeUsers(vs, m)
			if err != nil {
				return err
			}
			out := []volumeInfo{}
			t := table{header: []string{"NAME", "SIZE", "FILES", "CREATED", "USED BY"}}
			for _, v := range list {
				v.Usage()
				out = append(out, volumeInfo{v, users[v.Name]})
				t.rows = append(t.rows, []string{v.Name, humanBytes(v.DiskBytes), fmt.Sprint(v.Files),
					v.Created.Local().Format(time.DateTime), listOrDash(users[v.Name])})
			}
			return a.render(out, t)
		},
	}
}

func newVolumeRmCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "rm NAME...",
		Short:   "Remove named volumes and their data (refused while a container mounts them)",
		Example: `  acetate rm db && acetate volume rm pgdata`,
		Args:    minArgs(1, "at least one volume NAME"),
		RunE: func(c *cobra.Command, args []string) error {
			for _, name := range args {
				if err := volumeName(name); err != nil {
					return err
				}
			}
			vs, m, err := a.volumes()
			if err != nil {
				return err
			}
			users, err := volumeUsers(vs, m)
			if err != nil {
				return err
			}
			for _, name := range args {
				if err := vs.Remove(name, users[name]); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

func newVolumeInspectCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "inspect NAME",
		Short:   "Show a named volume: its directory, size and the containers that mount it",
		Example: `  acetate volume inspect pgdata --format json`,
		Args:    exactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if err := volumeName(args[0]); err != nil {
				return err
			}
			vs, m, err := a.volumes()
			if err != nil {
				return err
			}
			v, err := vs.Get(args[0])
			if err != nil {
				return err
			}
			users, err := volumeUsers(vs, m)
			if err != nil {
				return err
			}
			v.Usage()
			return a.render(volumeInfo{v, users[v.Name]}, table{header: []string{"FIELD", "VALUE"}, rows: [][]string{
				{"name", v.Name}, {"path", v.Path}, {"created", v.Created.Local().Format(time.DateTime)},
				{"size", humanBytes(v.DiskBytes)}, {"files", fmt.Sprint(v.Files)}, {"used by", listOrDash(users[v.Name])},
			}})
		},
	}
}
