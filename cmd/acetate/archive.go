package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/acetate/acetate/fs/container"
	"github.com/acetate/acetate/fs/container/archive"
	"github.com/acetate/acetate/internal/atomicfile"
	"github.com/acetate/acetate/runtime/launch"
	"github.com/spf13/cobra"
)

// newArchiveCmds returns export and import.
func newArchiveCmds(a *app) []*cobra.Command {
	return []*cobra.Command{newContainerExportCmd(a), newContainerImportCmd(a)}
}

func newContainerExportCmd(a *app) *cobra.Command {
	var o archive.ExportOptions
	cmd := &cobra.Command{
		Use:   "export NAME FILE|- [--since SNAP] [--with-template]",
		Short: "Write a container (settings, differences, snapshots) to an archive",
		Long: `Export writes container NAME to FILE (or to standard output for -) as one
plain tar archive: index.json (its settings, template name and layers, the
list of what follows), then the layer manifests of its differences and
snapshots, then the file objects the target may lack (look inside with
tar -tvf FILE). Its template's layers are left out, so the target store
must have the template, unless --with-template, which carries them.

--since SNAP writes an incremental archive: only what changed after
snapshot SNAP (and the snapshots taken since), for a store that imported
the archive that carried SNAP. A running container is frozen while its
differences are read. FILE is written whole or not at all.`,
		Example: `  acetate export web1 web1.tar
  acetate export web1 - --with-template | ssh host2 acetate import - web1
  acetate snapshot create web1 mon && acetate export web1 web1-full.tar
  acetate snapshot create web1 tue && acetate export web1 web1-tue.tar --since mon`,
		Args: exactArgs(2),
		RunE: a.containerRun(func(c *cobra.Command, m *container.Manager, name string, args []string) error {
			l := launch.New(m)
			o.Freeze = func(capture func() error) (time.Duration, error) { return l.Frozen(name, capture) }
			ctx, finish := interruptible(c.Context(), "no archive was written")
			var r *archive.Report
			export := func(w io.Writer) (err error) {
				r, err = archive.Export(ctx, m, name, w, o)
				return err
			}
			var err error
			if args[0] == "-" {
				err = export(a.stdout)
			} else {
				err = atomicfile.Write(args[0], true, export)
			}
			if err := finish(err); err != nil {
				return err
			}
			if args[0] == "-" {
				return nil // standard output is the archive
			}
			if a.format == "json" {
				return a.render(r, table{})
			}
			fmt.Fprintf(a.stdout, "exported %s to %s: %d snapshot(s), %d layer(s), %d object(s) (%s of content), %s written%s\n",
				name, args[0], r.Snapshots, r.Layers, r.Objects, humanBytes(r.ObjectBytes), humanBytes(r.Bytes), frozenText(r.Frozen))
			return nil
		}),
	}
	cmd.Flags().StringVar(&o.Since, "since", "", "write only what changed after this snapshot (incremental)")
	cmd.Flags().BoolVar(&o.WithTemplate, "with-template", false, "carry the template's layers too, for a store without the template")
	return cmd
}

// frozenText says how long a container was frozen, if it was.
func frozenText(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return fmt.Sprintf(", frozen for %v", d.Round(time.Microsecond))
}

func newContainerImportCmd(a *app) *cobra.Command {
	var trust bool
	cmd := &cobra.Command{
		Use:   "import FILE|- [NAME]",
		Short: "Make a container from an archive written by export",
		Long: `Import reads an archive written by acetate export from FILE (or standard
input for -) and makes container NAME (default: the name in the archive)
with its settings, differences and snapshots. An incremental archive
(export --since) brings a stopped container up to date instead; import
the archives of a chain in order. The whole archive is read and checked
before anything changes: a corrupt or cut archive changes nothing. The
settings that reach the host (bind mounts of host paths, a seccomp profile
or none, the host's network, published ports) are left out, and said so,
unless --trust-settings (for archives of your own).`,
		Example: `  acetate import web1.tar
  acetate import web1.tar web1-copy
  acetate import web1-full.tar && acetate import web1-tue.tar`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return usageError{fmt.Errorf("requires FILE (or -) and at most one container NAME")}
			}
			if len(args) == 2 {
				if _, err := containerName(args[1]); err != nil {
					return err
				}
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			m, err := a.createContainers()
			if err != nil {
				return err
			}
			o := archive.ImportOptions{TrustSettings: trust}
			if len(args) == 2 {
				o.Name = args[1]
			}
			in := a.stdin
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			}
			p, done := a.progress("importing", true)
			o.Progress = p
			ctx, finish := interruptible(c.Context(), "nothing was imported")
			r, err := archive.Import(ctx, m, in, o)
			done()
			if err := finish(err); err != nil {
				return err
			}
			if a.format == "json" {
				return a.render(r, table{})
			}
			kind := "imported"
			if r.Incremental {
				kind = "updated"
			}
			fmt.Fprintf(a.stdout, "%s %s: %d snapshot(s), %d layer(s), %d object(s) (%s of content)\n",
				kind, r.Name, r.Snapshots, r.Layers, r.Objects, humanBytes(r.ObjectBytes))
			a.printDropped(r.Dropped)
			return nil
		},
	}
	cmd.Flags().BoolVar(&trust, "trust-settings", false, "keep the settings that reach the host (bind mounts, seccomp, host network, published ports)")
	return cmd
}

// createContainers is containers for the store at --root, made when
// missing: import and pull --container put containers into a new store.
func (a *app) createContainers() (*container.Manager, error) {
	st, err := a.createStore()
	if err != nil {
		return nil, err
	}
	return a.containersOf(st)
}
