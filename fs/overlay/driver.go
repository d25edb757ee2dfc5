package overlay

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/acetate/acetate/fs"
	"golang.org/x/sys/unix"
)

// Driver is the kernel overlayfs driver. Its mounts outlive the process
// that made them.
type Driver struct{}

var _ fs.Driver = Driver{}

// Name returns "overlay".
func (Driver) Name() string { return "overlay" }

// Mount builds the metadata trees of s.Layers that are missing and mounts
// the union at s.Target. A mount already at s.Target (stale or not) is
// detached first, so the target always ends up with this union on top.
func (Driver) Mount(ctx context.Context, s fs.Spec) error {
	if len(s.Layers) == 0 {
		return errors.New("overlay mount: the spec has no layers")
	}
	metas, err := BuildMeta(s.Store, s.Layers)
	if err != nil {
		return fmt.Errorf("overlay mount of %s: %w", s.Target, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := detachIfMounted(s.Target); err != nil {
		return fmt.Errorf("overlay mount of %s: %w", s.Target, err)
	}
	opts := []option{}
	for i := len(metas) - 1; i >= 0; i-- {
		opts = append(opts, option{"lowerdir+", metas[i]})
	}
	for i := len(s.Layers) - 1; i >= 0; i-- {
		opts = append(opts, option{"datadir+", DataDir(s.Store, s.Layers[i])})
	}
	opts = append(opts, option{"datadir+", s.Store.ObjectsDir()})
	if !s.ReadOnly {
		opts = append(opts, option{"upperdir", s.Upper}, option{"workdir", s.Work})
	}
	opts = append(opts, option{"metacopy", "on"}, option{"redirect_dir", "on"}, option{"index", "off"})
	if err := mount(s.Target, opts, s.ReadOnly); err != nil {
		return fmt.Errorf("overlay mount of %s: %w", s.Target, err)
	}
	return nil
}

// Unmount unmounts the union at target. A target that is not a mount
// point is not an error, so that cleaning up after a crash is always safe.
func (Driver) Unmount(target string) error {
	err := unix.Unmount(target, 0)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("unmount %s: %w", target, err)
	}
	return nil
}

// Mounted reports whether path is the root of a mount. A mount whose
// server is gone (a dead FUSE mount) counts as mounted: it still has to be
// unmounted.
func Mounted(path string) (bool, error) {
	var st unix.Statx_t
	err := unix.Statx(unix.AT_FDCWD, path, unix.AT_SYMLINK_NOFOLLOW|unix.AT_NO_AUTOMOUNT, unix.STATX_BASIC_STATS, &st)
	switch {
	case errors.Is(err, unix.ENOTCONN):
		return true, nil
	case errors.Is(err, os.ErrNotExist):
		return false, nil
	case err != nil:
		return false, &os.PathError{Op: "statx", Path: path, Err: err}
	}
	if st.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT == 0 {
		return mountinfoHas(path)
	}
	return st.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0, nil
}

// mountinfoHas is Mounted for kernels without STATX_ATTR_MOUNT_ROOT.
func mountinfoHas(path string) (bool, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && unescapeMountinfo(f[4]) == path {
			return true, nil
		}
	}
	return false, nil
}

func unescapeMountinfo(s string) string {
	return strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(s)
}

// detachIfMounted lazily unmounts whatever is mounted at target.
func detachIfMounted(target string) error {
	m, err := Mounted(target)
	if err != nil || !m {
		return err
	}
	if err := unix.Unmount(target, unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach stale mount at %s: %w", target, err)
	}
	return nil
}
