package main

import (
	"fmt"
	"strings"

	"github.com/acetate/acetate/fs/archive"
	"github.com/acetate/acetate/fs/container"
	"github.com/spf13/cobra"
)

func newCpCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "cp SRC DST",
		Short: "Copy files and trees between a container and the host",
		Long: `cp copies a file or a directory tree between a container and the host, as
docker cp does: one of SRC and DST is NAME:PATH, a path in container NAME,
the other a host path, or - for a tar stream on standard input (DST in the
container, a directory) or standard output (SRC in the container). Owners,
modes, nanosecond times, extended attributes (security.capability too),
symbolic links and hardlinks are kept, as with cp -a.

A directory DST that exists receives SRC under SRC's name (SRC/. copies what
SRC holds instead); any other DST is made, or replaced, with SRC's
content. A symbolic link as SRC's last component is copied as a link.

Container paths resolve inside the container's root, as the container
itself resolves them: a link to /etc/shadow there is the container's
/etc/shadow, never the host's. A running container is copied through its
init's root, with its volumes and tmpfs mounts; a stopped one is mounted
for the copy, without them (a volume's files are in its directory: acetate
volume inspect). Device nodes are not made on the host: copy them as a tar
stream.`,
		Example: `  acetate cp web1:/etc/nginx ./nginx-conf
  acetate cp ./site/. web1:/var/www/html
  acetate cp web1:/var/log - | tar -tv
  tar -c -C build . | acetate cp - web1:/opt/app`,
		Args: exactArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			src, dst := splitCpArg(args[0]), splitCpArg(args[1])
			switch {
			case src.name != "" && dst.name != "":
				return usageError{fmt.Errorf("copying between two containers is not supported: copy to the host first")}
			case src.name == "" && dst.name == "":
				return usageError{fmt.Errorf("one of SRC and DST must be a container path, NAME:PATH")}
			case src.path == "" || dst.path == "":
				return usageError{fmt.Errorf("give a path, or - for a tar stream")}
			}
			side := src
			if dst.name != "" {
				side = dst
			}
			if _, err := containerName(side.name); err != nil {
				return err
			}
			m, err := a.containers()
			if err != nil {
				return err
			}
			return a.copy(c, m, src, dst)
		},
	}
}

// cpArg is one side of cp: a container's path (name set) or a host path.
type cpArg struct{ name, path string }

// splitCpArg splits NAME:PATH as docker cp does: a host path is one with
// no colon, or with a slash before its first one, or that starts with "."
// or "/" (./a:b is a host file).
func splitCpArg(arg string) cpArg {
	name, p, ok := strings.Cut(arg, ":")
	if !ok || strings.Contains(name, "/") || strings.HasPrefix(arg, ".") || strings.HasPrefix(arg, "/") {
		return cpArg{path: arg}
	}
	return cpArg{name: name, path: p}
}

// copy runs one cp, with the container's root open for its time.
func (a *app) copy(c *cobra.Command, m *container.Manager, src, dst cpArg) error {
	name := src.name + dst.name
	root, release, err := m.OpenRoot(c.Context(), name)
	if err != nil {
		return err
	}
	in := archive.InRoot(int(root.Fd()))
	switch {
	case dst.path == "-":
		err = archive.WriteStream(a.stdout, in, src.path)
	case src.path == "-":
		err = archive.ExtractStream(a.stdin, in, dst.path)
	case src.name != "":
		err = archive.Copy(in, src.path, archive.Host(), dst.path)
	default:
		err = archive.Copy(archive.Host(), src.path, in, dst.path)
	}
	if rerr := release(); err == nil && rerr != nil {
		err = fmt.Errorf("%s: %w", name, rerr)
	}
	return err
}
