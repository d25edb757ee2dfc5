package runtime

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// Mount is one mount made in a container's root as it starts, before its
// command runs: a host directory or file bound there (a bind mount, or a
// named volume's directory), or a new tmpfs. See mountVolumes for how the
// target is reached.
type Mount struct {
	// Source is the host path bound; empty for a tmpfs. It is the
	// caller's: it resolves as any host path does.
	Source string `json:"source,omitempty"`
	// Target is the absolute path in the container. It resolves inside
	// the root, symbolic links included, and the directories it lacks are
	// made there.
	Target string `json:"target"`
	// ReadOnly mounts it read-only; the container cannot remount it
	// (that takes CAP_SYS_ADMIN, which it lacks).
	ReadOnly bool `json:"readOnly,omitempty"`
	// Tmpfs mounts a new, empty tmpfs (mode 1777) instead of binding
	// Source; Size is its size in bytes (0: the kernel's default, half of
	// the RAM).
	Tmpfs bool  `json:"tmpfs,omitempty"`
	Size  int64 `json:"size,omitempty"`
}

// launcherTrees are the trees the launcher mounts itself after the
// volumes: a volume there would be hidden under them, or hide what they
// mask.
var launcherTrees = []string{"/proc", "/sys", "/dev"}

// CheckMount returns an error when m cannot be mounted: a bad target (see
// CheckTarget), a bind without an absolute source, or a tmpfs with one.
func CheckMount(m Mount) error {
	if err := CheckTarget(m.Target); err != nil {
		return err
	}
	switch {
	case m.Tmpfs && m.Source != "":
		return fmt.Errorf("tmpfs at %q has a source", m.Target)
	case !m.Tmpfs && !path.IsAbs(m.Source):
		return fmt.Errorf("bind source %q for %q is not an absolute path", m.Source, m.Target)
	case m.Size < 0:
		return fmt.Errorf("tmpfs at %q: negative size", m.Target)
	}
	return nil
}

// CheckTarget returns an error when target cannot be a mount's: a path
// that is not absolute, the root itself, or one in /proc, /sys or /dev.
func CheckTarget(target string) error {
	t := path.Clean(target)
	switch {
	case !path.IsAbs(target):
		return fmt.Errorf("mount target %q is not an absolute path", target)
	case t == "/":
		return fmt.Errorf("mount target %q is the container's root", target)
	case slices.ContainsFunc(launcherTrees, func(d string) bool { return t == d || strings.HasPrefix(t, d+"/") }):
		return fmt.Errorf("mount target %q is in /proc, /sys or /dev, which the launcher mounts", target)
	}
	return nil
}
