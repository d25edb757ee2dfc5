package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// config is a parsed command line.
type config struct {
	// foreground serves in this process instead of a background one.
	foreground bool
	debug      bool
	help       bool
	version    bool
	// lower is the lowerdir list, top layer first, absolute.
	lower []string
	// upper and work are absolute, or both empty for a read-only mount.
	upper, work string
	target      string
	readOnly    bool
	noSuid      bool
}

// quietOptions are accepted without a warning: the mount always has
// allow_other and default_permissions, and is always nodev (a device node
// in a layer never opens a host device); volatile (podman passes it) only
// allows skipping syncs; the rest are mount(8)'s defaults or have no
// meaning here.
var quietOptions = map[string]bool{
	"allow_other": true, "default_permissions": true, "volatile": true, "rw": true, "suid": true,
	"dev": true, "nodev": true, "exec": true, "async": true, "relatime": true, "auto": true, "nofail": true,
}

// parseArgs parses the command line of fuse-overlayfs:
//
//	acetate-fuse [-f] [-d] -o OPTIONS MOUNTPOINT
//	acetate-fuse SOURCE MOUNTPOINT -o OPTIONS   (as mount.fuse3 runs it)
//
// Options it does not know are ignored with a warning on warn.
func parseArgs(args []string, warn io.Writer) (*config, error) {
	c := &config{}
	var opts, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-f":
			c.foreground = true
		case a == "-d" || a == "--debug":
			c.debug, c.foreground = true, true
		case a == "-h" || a == "--help":
			c.help = true
		case a == "-V" || a == "--version":
			c.version = true
		case a == "-o":
			if i+1 == len(args) {
				return nil, errors.New("-o: needs an option list")
			}
			i++
			opts = append(opts, args[i])
		case strings.HasPrefix(a, "-o"):
			opts = append(opts, a[2:])
		case a == "--":
			pos = append(pos, args[i+1:]...)
			i = len(args)
		case strings.HasPrefix(a, "-") && a != "-":
			fmt.Fprintf(warn, "acetate-fuse: unknown argument %q ignored\n", a)
		default:
			pos = append(pos, a)
		}
	}
	if c.help || c.version {
		return c, nil
	}
	for _, o := range opts {
		if err := c.setOptions(o, warn); err != nil {
			return nil, err
		}
	}
	switch len(pos) {
	case 1, 2:
		c.target = pos[len(pos)-1]
	case 0:
		return nil, errors.New("no mount point given")
	default:
		return nil, fmt.Errorf("too many arguments: %q (want [SOURCE] MOUNTPOINT)", pos)
	}
	return c, c.check()
}

// setOptions applies one comma-separated -o list.
func (c *config) setOptions(list string, warn io.Writer) error {
	for _, o := range strings.Split(list, ",") {
		key, value, hasValue := strings.Cut(o, "=")
		switch {
		case o == "":
		case key == "lowerdir" && hasValue:
			c.lower = nil
			// "::" separates data-only layers in newer overlayfs; they
			// are stacked like the others.
			for _, d := range strings.Split(value, ":") {
				if d != "" {
					c.lower = append(c.lower, d)
				}
			}
			if len(c.lower) == 0 {
				return errors.New("option lowerdir: no directory given")
			}
		case key == "upperdir" && hasValue:
			c.upper = value
		case key == "workdir" && hasValue:
			c.work = value
		case o == "ro":
			c.readOnly = true
		case o == "nosuid":
			c.noSuid = true
		case quietOptions[o]:
		default:
			fmt.Fprintf(warn, "acetate-fuse: unknown option %q ignored\n", o)
		}
	}
	return nil
}

// check makes the directories absolute and makes sure they exist.
func (c *config) check() error {
	if len(c.lower) == 0 {
		return errors.New("option lowerdir: missing (-o lowerdir=DIR[:DIR...])")
	}
	if (c.upper == "") != (c.work == "") {
		return errors.New("options upperdir and workdir: give both or neither")
	}
	if c.upper == "" {
		c.readOnly = true
	}
	type dirOption struct {
		name string
		p    *string
	}
	dirs := []dirOption{{"upperdir", &c.upper}, {"workdir", &c.work}, {"mount point", &c.target}}
	for i := range c.lower {
		dirs = append(dirs, dirOption{"lowerdir", &c.lower[i]})
	}
	for _, d := range dirs {
		if *d.p == "" {
			continue
		}
		abs, err := filepath.Abs(*d.p)
		if err != nil {
			return fmt.Errorf("%s %q: %w", d.name, *d.p, err)
		}
		st, err := os.Stat(abs)
		if err != nil {
			return fmt.Errorf("%s: %w", d.name, err)
		}
		if !st.IsDir() {
			return fmt.Errorf("%s %s: not a directory", d.name, abs)
		}
		*d.p = abs
	}
	return nil
}
