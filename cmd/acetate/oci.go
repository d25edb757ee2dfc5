package main

import (
	"fmt"
	"path"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/acetate/acetate/templates"
	"github.com/acetate/acetate/templates/oci"
	"github.com/acetate/acetate/templates/registry"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/spf13/cobra"
)

func newImportCmd(a *app) *cobra.Command {
	var replace bool
	cmd := &cobra.Command{
		Use:   "import SOURCE NAME[:TAG]",
		Short: "Make a template from an OCI image layout or a docker save archive",
		Long: `import reads an OCI image — an image layout directory (oci:DIR[:REF], REF
picks the image by ref name) or a "docker save" archive
(docker-archive:FILE.tar) — and makes NAME[:TAG] from it, one layer per image
layer, keeping Entrypoint+Cmd, Env, WorkingDir and User. Every blob is
verified against its digest; on error the store is unchanged. An existing
NAME[:TAG] is refused before any work, unless --replace.`,
		Example: `  skopeo copy docker://debian:12 oci:/tmp/debian:12
  acetate template import oci:/tmp/debian:12 debian:12
  docker save alpine:3 -o alpine.tar && acetate template import docker-archive:alpine.tar alpine:3`,
		Args: exactArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			r, err := parseRef(args[1])
			if err != nil {
				return err
			}
			img, err := oci.OpenSource(args[0])
			if err != nil {
				return usageError{err}
			}
			st, err := a.createStore()
			if err != nil {
				return err
			}
			if err := beforeStaging(st, r, replace); err != nil {
				return err
			}
			p, done := a.progress("importing "+r.String(), true)
			ctx, finish := interruptible(c.Context(), "nothing was imported, and the files this import staged are removed")
			t, err := oci.Import(ctx, st, r, img, p)
			done()
			if err != nil {
				err = fmt.Errorf("import %s: %w", args[0], err)
			}
			if err := finish(err); err != nil {
				return err
			}
			return a.renderTemplate(t)
		},
	}
	addReplaceFlag(cmd, &replace)
	return cmd
}

// exportOCI writes template t into the image layout dest (DIR[:REF], REF
// defaulting to the template's tag).
func (a *app) exportOCI(c *cobra.Command, st *templates.Store, t *templates.Template, dest string) error {
	dir, ref, _ := strings.Cut(dest, ":")
	if ref == "" {
		ref = t.Tag
	}
	p, done := a.progress("exporting "+t.Ref.String(), true)
	defer done()
	return oci.ExportLayout(c.Context(), st, t, dir, ref, p)
}

func newPushCmd(a *app) *cobra.Command {
	var insecure, pushContainer bool
	var stall time.Duration
	cmd := &cobra.Command{
		Use:   "push NAME[:TAG] REGISTRY/REPO[:TAG]",
		Short: "Push a template to an OCI registry",
		Long: `push writes the template as an OCI image that any client pulls, and beside it
(tagged TAG.acetate) an artifact with the template's layer manifests and its
file objects, so that acetate hosts pull only the objects they lack.
Credentials come from the docker and podman auth files (docker login,
podman login). Without a tag, the image is tagged latest. A transfer that
moves less than 1 KiB in --stall-timeout (default 30s) is abandoned with
"registry transfer stalled".

A container (--container, or a NAME that only a container has) is pushed
as its differences and settings, in an artifact whose subject is its
template's image (pushed beside it, tagged template-NAME-TAG, only when
the registry lacks it); a running container is frozen while its
differences are read. acetate pull REF --container NAME makes it again.`,
		Example: `  acetate push debian:12 registry.example.com/os/debian:12
  acetate push web 127.0.0.1:5000/web:1 --insecure
  acetate push web1 registry.example.com/ctr/web1:mon --container`,
		Args: exactArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			image, err := imageReference(args[1])
			if err != nil {
				return err
			}
			if ctr, err := a.isContainerPush(args[0], pushContainer); err != nil || ctr {
				if err != nil {
					return err
				}
				o := registry.Options{Insecure: insecure, StallTimeout: stall}
				if _, err := registry.ParseReference(image, o); err != nil {
					return usageError{err}
				}
				return a.pushContainer(c, args[0], image, o)
			}
			st, t, err := a.lookup(args[0])
			if err != nil {
				return err
			}
			o := registry.Options{Insecure: insecure, StallTimeout: stall}
			if _, err := registry.ParseReference(image, o); err != nil {
				return usageError{err}
			}
			p, done := a.progress("pushing "+t.Ref.String(), true)
			o.Progress = p
			d, err := registry.Push(c.Context(), st, t, image, o)
			done()
			if err != nil {
				return err
			}
			return a.render(map[string]string{"template": t.Ref.String(), "image": image, "digest": d.String()}, table{
				header: []string{"TEMPLATE", "IMAGE", "DIGEST"},
				rows:   [][]string{{t.Ref.String(), image, d.String()}},
			})
		},
	}
	cmd.Flags().BoolVar(&insecure, "insecure", false, "allow plain HTTP and unverified TLS")
	cmd.Flags().DurationVar(&stall, "stall-timeout", registry.DefaultStallTimeout, "abandon a transfer that moves less than 1 KiB in this long")
	cmd.Flags().BoolVar(&pushContainer, "container", false, "NAME is a container: push its differences and settings")
	return cmd
}

func newPullCmd(a *app) *cobra.Command {
	var insecure, replace, trust bool
	var ctr string
	var stall time.Duration
	cmd := &cobra.Command{
		Use:   "pull REGISTRY/REPO[:TAG] [NAME[:TAG]]",
		Short: "Pull a template (or any OCI image) from a registry",
		Long: `pull makes a template from an image in an OCI registry. When the image was
pushed by acetate, only the file objects the store lacks are fetched;
any other image is imported layer by layer. Without a tag, the image
tagged latest is pulled. NAME[:TAG] defaults to the last part of the
repository and the image's tag. Every byte is verified against
its digest before it enters the store, and the template appears only when
complete. An existing NAME[:TAG] is refused before any transfer, unless
--replace (to update a template from its image). An application template
pushed by acetate names its base: the pulled template's BASE is that
template when this store has it (the same layers); otherwise it has none.

Interrupted pulls of images pushed by acetate resume: fetched objects are
committed at least every 2 seconds and when a pull is stopped (SIGINT,
SIGTERM, a stall or a lost connection), so the next pull fetches only what
is missing; after kill -9 at most the last 2 seconds of transfer are
fetched again. Other images are imported whole or not at all.

--container NAME pulls a container pushed with acetate push: its template
too where this store lacks it (under the template's name, which must be
free then), and of its differences only the objects the store lacks. Its
settings that reach the host (bind mounts of host paths, a seccomp profile
or none, the host's network, published ports) are left out, and said so,
unless --trust-settings.

Limits: every blob is read up to its declared size and no further (a
registry sending more is refused); blobs with no declared size (the
template's config and layer descriptions) up to 16 MiB, manifest chunks up
to 256 MiB, image manifests up to 100 MiB. A transfer that moves less than 1 KiB in --stall-timeout
(default 30s), answers included, is abandoned with "registry transfer
stalled".`,
		Example: `  acetate pull registry.example.com/os/debian:12
  acetate pull 127.0.0.1:5000/web:1 web:1 --insecure
  acetate pull registry.example.com/ctr/web1:mon --container web1`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return usageError{fmt.Errorf("accepts 1 or 2 arguments, received %d", len(args))}
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			image, err := imageReference(args[0])
			if err != nil {
				return err
			}
			o := registry.Options{Insecure: insecure, StallTimeout: stall}
			src, err := registry.ParseReference(image, o)
			if err != nil {
				return usageError{err}
			}
			if ctr != "" {
				if len(args) > 1 {
					return usageError{fmt.Errorf("give --container NAME or a template NAME[:TAG], not both")}
				}
				return a.pullContainer(c, image, ctr, o, trust)
			}
			r, err := pullName(src, args[1:])
			if err != nil {
				return err
			}
			st, err := a.createStore()
			if err != nil {
				return err
			}
			if err := beforeStaging(st, r, replace); err != nil {
				return err
			}
			p, done := a.progress("pulling "+r.String(), true)
			o.Progress = p
			ctx, finish := interruptible(c.Context(), "no template was made; the objects verified so far are kept, and the next pull fetches only the rest")
			t, err := registry.Pull(ctx, st, image, r, o)
			done()
			if err := finish(err); err != nil {
				return err
			}
			return a.renderTemplate(t)
		},
	}
	addReplaceFlag(cmd, &replace)
	cmd.Flags().StringVar(&ctr, "container", "", "pull a container pushed with push --container, as container `NAME`")
	cmd.Flags().BoolVar(&trust, "trust-settings", false, "with --container: keep its bind mounts, seccomp, host network and published ports")
	cmd.Flags().BoolVar(&insecure, "insecure", false, "allow plain HTTP and unverified TLS")
	cmd.Flags().DurationVar(&stall, "stall-timeout", registry.DefaultStallTimeout, "abandon a transfer that moves less than 1 KiB in this long")
	return cmd
}

// imageReference completes REGISTRY/REPO[:TAG|@DIGEST] as docker does: a
// reference without tag or digest means the tag latest. One without a
// registry (os/debian) is a usage error that says what is missing: acetate
// has no default registry.
func imageReference(s string) (string, error) {
	host, repo, ok := strings.Cut(s, "/")
	if !ok || repo == "" || !strings.ContainsAny(host, ".:") && host != "localhost" {
		return "", usageError{fmt.Errorf("image reference %q names no registry: give REGISTRY/REPO[:TAG], as registry.example.com/os/debian:12 or 127.0.0.1:5000/os/debian", s)}
	}
	if last := repo[strings.LastIndex(repo, "/")+1:]; !strings.ContainsAny(last, ":@") {
		s += ":" + templates.DefaultTag
	}
	return s, nil
}

// Compiled on first use: package init runs at every container start.
var notNameChars = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`[^a-z0-9._-]+`) })

// pullName is the template a pull makes: the one named, or the last part
// of the repository with the image's tag.
func pullName(src name.Reference, named []string) (templates.Ref, error) {
	if len(named) > 0 {
		return parseRef(named[0])
	}
	base := notNameChars().ReplaceAllString(path.Base(src.Context().RepositoryStr()), "-")
	tag := templates.DefaultTag
	if t, ok := src.(name.Tag); ok {
		tag = t.TagStr()
	}
	return parseRef(base + ":" + tag)
}

// renderTemplate prints a template made by import or pull.
func (a *app) renderTemplate(t *templates.Template) error {
	return a.render(t, table{
		header: []string{"TEMPLATE", "LAYERS", "TOP LAYER"},
		rows:   [][]string{{t.Ref.String(), fmt.Sprint(len(t.Layers)), string(t.Layers[len(t.Layers)-1])}},
	})
}
