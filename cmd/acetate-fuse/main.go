// Command acetate-fuse mounts a union of plain directories with acetate's
// FUSE driver. Its command line is fuse-overlayfs's, so it can serve as a
// container engine's mount_program (podman's storage.conf) or as
// `mount -t fuse.acetate-fuse`:
//
//	acetate-fuse [-f] [-d] -o lowerdir=L1:L2...,upperdir=U,workdir=W MOUNTPOINT
//	acetate-fuse SOURCE MOUNTPOINT -o OPTIONS
//
// The leftmost lowerdir is the top layer; without upperdir the mount is
// read-only. It returns once the mount is live, served by a background
// process that exits when the mount is unmounted (with -f, this process
// serves). It needs root.
package main

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"
)

const usage = `Usage: acetate-fuse [-f] [-d] -o lowerdir=L1[:L2...][,upperdir=U,workdir=W][,OPTIONS] MOUNTPOINT
       acetate-fuse SOURCE MOUNTPOINT -o OPTIONS

Mounts the union of the lower directories (the leftmost on top) and the
upper directory at MOUNTPOINT, with overlayfs semantics and overlayfs's
on-disk format (whiteouts, opaque directories). Without upperdir the mount
is read-only. Needs root.

  -f            serve in the foreground
  -d            log every FUSE request (implies -f)
  -o OPTIONS    comma-separated: lowerdir=, upperdir=, workdir=, ro;
                allow_other and default_permissions are always on;
                other options are ignored with a warning
  -h, --help    show this help
  -V, --version show the version
`

func main() {
	serveIfChild()
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run runs the command line args and returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	c, err := parseArgs(args, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "acetate-fuse: %v\n\n%s", err, usage)
		return 2
	}
	switch {
	case c.help:
		fmt.Fprint(stdout, usage)
		return 0
	case c.version:
		fmt.Fprintf(stdout, "acetate-fuse version %s\n", version())
		return 0
	}
	if c.foreground {
		err = serve(c, func() {})
	} else {
		err = startBackground(args)
	}
	if err != nil {
		fmt.Fprintf(stderr, "acetate-fuse: %v\n", err)
		return 1
	}
	return 0
}

// version is the module version the binary was built from.
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
