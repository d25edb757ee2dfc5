package overlay

import (
	"bytes"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// option is one fsconfig key and string value.
type option struct{ key, value string }

// mount makes an overlayfs with opts and attaches it at target, through
// the new mount API (fsopen, fsconfig, fsmount, move_mount): each layer is
// its own fsconfig call, so there is no length limit on the layer list and
// no escaping of ',' or ':' in paths.
func mount(target string, opts []option, readOnly bool) error {
	fd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("fsopen overlay: %w", err)
	}
	defer unix.Close(fd)
	for _, o := range opts {
		if err := unix.FsconfigSetString(fd, o.key, o.value); err != nil {
			return fmt.Errorf("overlay option %s=%s: %w%s", o.key, o.value, err, kernelLog(fd))
		}
	}
	if err := unix.FsconfigCreate(fd); err != nil {
		return fmt.Errorf("create overlay: %w%s", err, kernelLog(fd))
	}
	// The host's view of a container root honours no device node and no
	// set-uid bit: a node shipped in a template must not open the host's
	// devices, and a set-uid root binary that container root made must not
	// make a host user who can reach the mount point root. The runtime's
	// own mount of the root, inside the container, honours set-uid.
	attr := unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOSUID
	if readOnly {
		attr |= unix.MOUNT_ATTR_RDONLY
	}
	mfd, err := unix.Fsmount(fd, unix.FSMOUNT_CLOEXEC, attr)
	if err != nil {
		return fmt.Errorf("fsmount overlay: %w%s", err, kernelLog(fd))
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("attach overlay at %s: %w", target, err)
	}
	return nil
}

// kernelLog returns the messages the kernel left on a filesystem context,
// which say why a mount was refused.
func kernelLog(fd int) string {
	var out []string
	buf := make([]byte, 4096)
	for {
		n, err := unix.Read(fd, buf)
		if err != nil || n <= 0 {
			break
		}
		out = append(out, string(bytes.TrimSpace(buf[:n])))
	}
	if len(out) == 0 {
		return ""
	}
	return " (kernel: " + strings.Join(out, "; ") + ")"
}
