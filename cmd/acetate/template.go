package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/acetate/acetate/fs/container"
	"github.com/acetate/acetate/layers"
	"github.com/acetate/acetate/templates"
	"github.com/spf13/cobra"
)

func newTemplateCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "template",
		Aliases: []string{"templates"},
		Short:   "Publish, list, inspect, tag, export and remove templates",
	}
	cmd.AddCommand(newPublishCmd(a), newTemplateLsCmd(a), newInspectCmd(a),
		newTagCmd(a), newTemplateRmCmd(a), newExportCmd(a), newImportCmd(a), newTemplateRebaseCmd(a))
	return cmd
}

func newPublishCmd(a *app) *cobra.Command {
	var from, on, workdir, user, hostname string
	var cmdline, env []string
	var ociWhiteouts, replace bool
	var maxHoles int64
	cmd := &cobra.Command{
		Use:   "publish NAME[:TAG] --from SOURCE",
		Short: "Publish a directory or tarball as a template",
		Long: `Publish reads SOURCE — a directory, a tarball (plain, gzip, bzip2 or zstd)
or "-" for a tarball on standard input — into the store, and points
NAME[:TAG] at it. File content is stored once across all templates.
Sparse files keep their holes (they cost their data, not their size). A
compressed tarball is read to its end and its checksum verified. Limits:
at most 1 MiB after a tarball's end-of-archive marker; sparse entries of a
tarball may declare at most 16 GiB of holes in all (--max-holes; each byte
of a hole is hashed, about 2 GB/s), else the tarball is refused.

With --on, the template is an application template: one layer holding only
what differs from BASE (whiteouts for what was removed), stacked on BASE;
BASE cannot be NAME[:TAG] itself.

An existing NAME[:TAG] is refused before any work, unless --replace.`,
		Example: `  acetate template publish debian:12 --from /srv/debian-rootfs
  docker export web | acetate template publish web --from -
  acetate template publish debian-py:12 --from /srv/rootfs-with-python --on debian:12
  acetate template publish app --from app.tar.zst --cmd /usr/bin/app --env MODE=prod`,
		Args: exactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			r, err := parseRef(args[0])
			if err != nil {
				return err
			}
			if from == "" {
				return usageError{fmt.Errorf("--from SOURCE is required")}
			}
			opts := templates.PublishOptions{
				Config: templates.Config{Cmd: cmdline, Env: env, WorkingDir: workdir, User: user, Hostname: hostname},
				Stdin:  a.stdin,
			}
			opts.Tar.OCIWhiteouts = ociWhiteouts
			opts.Tar.MaxHoles = maxHoles
			if on != "" {
				base, err := parseRef(on)
				if err != nil {
					return err
				}
				opts.Base = &base
			}
			st, err := a.createStore()
			if err != nil {
				return err
			}
			if err := refuseReplace(st, r, replace); err != nil {
				return err
			}
			p, done := a.progress("publishing "+r.String(), true)
			opts.Progress = p
			ctx, finish := interruptible(c.Context(), "nothing was published, and the files this publish staged are removed")
			t, err := st.Publish(ctx, r, from, opts)
			done()
			if err := finish(err); err != nil {
				return err
			}
			return a.renderTemplate(t)
		},
	}
	f := cmd.Flags()
	f.StringVar(&from, "from", "", "source: a directory, a tarball, or - for stdin")
	f.StringVar(&on, "on", "", "publish as one layer on top of this base template")
	addReplaceFlag(cmd, &replace)
	f.StringArrayVar(&cmdline, "cmd", nil, "default command (repeat for each argument)")
	f.StringArrayVar(&env, "env", nil, "default environment variable KEY=VALUE (repeatable)")
	f.StringVar(&workdir, "workdir", "", "default working directory")
	f.StringVar(&user, "user", "", "default user uid[:gid]")
	f.StringVar(&hostname, "hostname", "", "default hostname")
	f.BoolVar(&ociWhiteouts, "oci-whiteouts", false, "treat .wh. files in a tarball as OCI whiteouts")
	f.Int64Var(&maxHoles, "max-holes", layers.DefaultMaxTarHoles, "bytes of holes the sparse entries of a tarball may declare in all (negative: no limit)")
	return cmd
}

func newTemplateLsCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List templates",
		Example: `  acetate template ls
  acetate template ls --format json | jq -r '.[].name'`,
		Args: exactArgs(0),
		RunE: func(c *cobra.Command, args []string) error {
			st, err := a.store()
			if err != nil {
				return err
			}
			all, err := st.List()
			if err != nil {
				return err
			}
			t := table{header: []string{"TEMPLATE", "LAYERS", "BASE", "CREATED"}}
			names := map[string]bool{}
			for _, tp := range all {
				names[tp.Ref.String()] = true
			}
			for _, tp := range all {
				base := tp.Base
				if base != "" && !names[base] { // template rm --force: its layers stay
					base += " (removed)"
				}
				t.rows = append(t.rows, []string{tp.Ref.String(), fmt.Sprint(len(tp.Layers)), base, tp.Created.Format("2006-01-02 15:04:05")})
			}
			return a.render(all, t)
		},
	}
}

func newInspectCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "inspect NAME[:TAG]",
		Short: "Show a template's layers, files, size, and bytes unique or shared",
		Example: `  acetate template inspect debian:12
  acetate template inspect debian:12 --format json`,
		Args: exactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			st, t, err := a.lookup(args[0])
			if err != nil {
				return err
			}
			in, err := st.Inspect(t)
			if err != nil {
				return err
			}
			layers := make([]string, len(t.Layers))
			for i, d := range t.Layers {
				layers[i] = string(d)
			}
			return a.render(in, table{
				header: []string{"FIELD", "VALUE"},
				rows: [][]string{
					{"template", t.Ref.String()},
					{"base", t.Base},
					{"layers", strings.Join(layers, "\n\t")},
					{"files", fmt.Sprint(in.Files)},
					{"directories", fmt.Sprint(in.Dirs)},
					{"logical size", humanBytes(in.LogicalBytes)},
					{"unique on disk", humanBytes(in.UniqueBytes)},
					{"shared on disk", humanBytes(in.SharedBytes)},
					{"cmd", strings.Join(t.Config.Cmd, " ")},
					{"env", strings.Join(t.Config.Env, "\n\t")},
					{"workdir", t.Config.WorkingDir},
					{"user", t.Config.User},
					{"hostname", t.Config.Hostname},
				},
			})
		},
	}
}

// lookup opens the store and finds the template named on the command line.
func (a *app) lookup(ref string) (*templates.Store, *templates.Template, error) {
	r, err := parseRef(ref)
	if err != nil {
		return nil, nil, err
	}
	st, err := a.store()
	if err != nil {
		return nil, nil, err
	}
	t, err := st.Get(r)
	return st, t, err
}

func newTagCmd(a *app) *cobra.Command {
	var replace bool
	cmd := &cobra.Command{
		Use:   "tag SOURCE[:TAG] TARGET[:TAG]",
		Short: "Give a template another name or tag",
		Long: `Tag points TARGET at SOURCE's layers and configuration. An existing TARGET
is refused unless --replace; TARGET cannot be SOURCE's own base.`,
		Example: `  acetate template tag debian:12 debian:stable
  acetate template tag debian:12.8 debian:stable --replace`,
		Args: exactArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			dst, err := parseRef(args[1])
			if err != nil {
				return err
			}
			st, t, err := a.lookup(args[0])
			if err != nil {
				return err
			}
			if err := refuseReplace(st, dst, replace); err != nil {
				return err
			}
			_, err = st.Tag(t.Ref, dst)
			return err
		},
	}
	addReplaceFlag(cmd, &replace)
	return cmd
}

func newTemplateRebaseCmd(a *app) *cobra.Command {
	var onto string
	var replace bool
	cmd := &cobra.Command{
		Use:   "rebase SRC[:TAG] --onto BASE[:TAG] NEW[:TAG]",
		Short: "Re-stack an application template on another base (a patched OS template)",
		Long: `Rebase makes NEW from the application template SRC (published with --on,
or committed from a container) with its application's layers stacked on
BASE instead of SRC's base: the Virtuozzo template-update path. Files the
application changed or removed stay its own; everything else comes from
BASE. Nothing is copied. It lists the paths changed on both sides (the
application's version is kept). An existing NEW is refused unless
--replace; containers of SRC move with acetate rebase.`,
		Example: `  acetate template rebase web:1 --onto debian:12.1 web:2
  acetate rebase app1 web:2`,
		Args: exactArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			if onto == "" {
				return usageError{fmt.Errorf("--onto BASE[:TAG] is required")}
			}
			refs := make([]templates.Ref, 3)
			for i, s := range []string{args[0], onto, args[1]} {
				r, err := parseRef(s)
				if err != nil {
					return err
				}
				refs[i] = r
			}
			st, err := a.store()
			if err != nil {
				return err
			}
			if err := refuseReplace(st, refs[2], replace); err != nil {
				return err
			}
			r, err := st.Rebase(refs[0], refs[1], refs[2])
			if err != nil {
				return err
			}
			if a.format == "json" {
				return a.render(r, table{})
			}
			a.printRebase(fmt.Sprintf("%s: %s re-stacked on %s, %d path(s) changed on both sides (kept the application's)",
				refs[2], refs[0], refs[1], len(r.Conflicts)), r.Conflicts)
			return nil
		},
	}
	cmd.Flags().StringVar(&onto, "onto", "", "the new base template")
	addReplaceFlag(cmd, &replace)
	return cmd
}

func newTemplateRmCmd(a *app) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm NAME[:TAG]... [--force]",
		Aliases: []string{"remove"},
		Short:   "Remove templates (their space is freed by gc)",
		Long: `Rm removes template names. A template that other templates have as their
base, or that containers were created from, is refused (they are named):
remove those first, or use --force to remove the name only; its layers
stay as long as a template or container uses them. Every name is checked
before any is removed. The space is freed by gc.`,
		Example: `  acetate template rm debian:old && acetate gc
  acetate template rm debian:11 --force   # web:1 and c1 keep working`,
		Args: minArgs(1, "at least one template"),
		RunE: func(c *cobra.Command, args []string) error {
			m, err := a.containers()
			if err != nil {
				return err
			}
			refs := make([]templates.Ref, 0, len(args))
			for _, arg := range args {
				r, err := parseRef(arg)
				if err != nil {
					return err
				}
				if _, err := m.Store().Get(r); err != nil {
					return err
				}
				if !slices.Contains(refs, r) {
					refs = append(refs, r)
				}
			}
			for _, r := range refs {
				if force {
					break
				}
				if err := refuseInUse(m, r, refs); err != nil {
					return err
				}
			}
			for _, r := range refs {
				if err := m.Store().Remove(r); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "remove the name even while templates or containers use it (not its layers)")
	return cmd
}

// refuseInUse returns an error naming the templates based on r and the
// containers made from it, if any; the templates being removed with it
// (removing) do not count.
func refuseInUse(m *container.Manager, r templates.Ref, removing []templates.Ref) error {
	based, err := m.Store().BasedOn(r)
	if err != nil {
		return err
	}
	var users []string
	for _, u := range based {
		if !slices.ContainsFunc(removing, func(x templates.Ref) bool { return x.String() == u }) {
			users = append(users, "template "+u)
		}
	}
	cs, err := m.List()
	if err != nil {
		return err
	}
	for _, c := range cs {
		if c.Template == r.String() {
			users = append(users, "container "+c.Name)
		}
	}
	if len(users) == 0 {
		return nil
	}
	return fmt.Errorf("%s is used by %s: remove them first, or use --force to remove the name only (its layers stay while used)",
		r, strings.Join(users, ", "))
}

// addReplaceFlag adds --replace, which lets a command replace an existing
// template name.
func addReplaceFlag(cmd *cobra.Command, replace *bool) {
	cmd.Flags().BoolVar(replace, "replace", false, "replace NAME:TAG if it exists (else refused)")
}

// refuseReplace returns an error when r exists and replace is not set.
func refuseReplace(st *templates.Store, r templates.Ref, replace bool) error {
	if replace {
		return nil
	}
	if err := st.RequireAbsent(r); err != nil {
		return fmt.Errorf("%w: use --replace to replace it, or another name", err)
	}
	return nil
}

// beforeStaging is what publish, commit, import and pull check before they
// stage files: that r may be written (refuseReplace), and it removes what
// killed writers left staged in tmp/.
func beforeStaging(st *templates.Store, r templates.Ref, replace bool) error {
	if err := refuseReplace(st, r, replace); err != nil {
		return err
	}
	_, err := st.RemoveStaleStaging()
	return err
}

func newExportCmd(a *app) *cobra.Command {
	var to, ociDir string
	cmd := &cobra.Command{
		Use:   "export NAME[:TAG] --to DIR|FILE.tar[.gz|.zst] | --oci DIR[:REF]",
		Short: "Write a template's full merged tree to a directory or tarball",
		Example: `  acetate template export debian:12 --to /tmp/rootfs
  acetate template export debian:12 --to debian.tar.zst
  acetate template export debian:12 --to - | tar -t
  acetate template export debian:12 --oci /tmp/images && skopeo inspect oci:/tmp/images:12`,
		Args: exactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if (to == "") == (ociDir == "") {
				return usageError{fmt.Errorf("give one of --to DIR|FILE and --oci DIR[:REF]")}
			}
			st, t, err := a.lookup(args[0])
			if err != nil {
				return err
			}
			if ociDir != "" {
				return a.exportOCI(c, st, t, ociDir)
			}
			if to == "-" {
				return st.WriteTar(c.Context(), t, "", a.stdout, nil)
			}
			p, done := a.progress("exporting "+t.Ref.String(), true)
			defer done()
			ctx, finish := interruptible(c.Context(), "nothing was written to "+to)
			return finish(st.Export(ctx, t, to, p))
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "destination directory, tarball (.tar, .tar.gz, .tar.zst) or - for a tar on stdout")
	cmd.Flags().StringVar(&ociDir, "oci", "", "write an OCI image layout to DIR, ref name REF (default: the template's tag)")
	return cmd
}
