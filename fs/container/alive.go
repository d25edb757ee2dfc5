package container

import (
	"errors"

	"github.com/acetate/acetate/fs/overlay"
	"golang.org/x/sys/unix"
)

// ErrMountGone: the container's root is recorded as mounted, but the
// mount is gone or dead (its FUSE server died).
var ErrMountGone = errors.New("the container's mount is gone")

// MountAlive reports whether c's recorded mount is still there and
// answers; false when c is not mounted. A FUSE mount whose server died
// stays in the mount table but answers nothing (ENOTCONN): statfs always
// reaches a FUSE server, where a stat of the root may be answered from the
// kernel's cache.
func MountAlive(c *Container) (bool, error) {
	if c.Mount == nil {
		return false, nil
	}
	mounted, err := overlay.Mounted(c.Mount.Target)
	if err != nil || !mounted {
		return false, err
	}
	var st unix.Statfs_t
	return unix.Statfs(c.Mount.Target, &st) == nil, nil
}
