package runtime

import (
	"errors"
	"fmt"
	"path"
	"strconv"

	"github.com/acetate/acetate/fs/upper"
	"github.com/acetate/acetate/internal/beneath"
	"golang.org/x/sys/unix"
)

// mountVolumes makes the mounts of a container, in order, in its root
// rootfs (bound on itself, not yet pivoted into, so that the sources are
// host paths). It uses the new mount API: each mount is made detached
// (open_tree of the source, or fsopen/fsmount of a tmpfs), given its
// flags (nodev always, as the root; read-only when asked) before it is
// attached, and then attached with move_mount onto a descriptor of the
// target.
//
// The attack this stops: the container's root (its template, its upper
// directory) has the target as a symbolic link to a host path, /etc or
// ../../../etc, or a process of another container sharing the root's
// volume swaps the target for such a link while this one starts. A mount
// onto the path would follow the link on the host and cover the host's
// /etc with a directory the container writes. Here the target is opened
// with openat2 RESOLVE_IN_ROOT from a descriptor of the root, and the
// directories it lacks made one at a time in their parent's descriptor
// (beneath.MkdirAllInRoot): a link leads to the container's own path, and
// the mount is attached to the inode opened, whatever the name points to
// by then. Nothing is mounted without nodev: a device node the container
// makes in a volume does not open.
func mountVolumes(rootfs string, mounts []Mount) error {
	if len(mounts) == 0 {
		return nil
	}
	root, err := unix.Open(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("failed to open root %s: %w", rootfs, err)
	}
	defer unix.Close(root)
	for _, m := range mounts {
		if err := mountVolume(root, m); err != nil {
			what := "tmpfs"
			if !m.Tmpfs {
				what = m.Source
			}
			return fmt.Errorf("failed to mount %s on the container's %s: %w", what, m.Target, err)
		}
	}
	return nil
}

// mountVolume makes the mount m in the root root.
func mountVolume(root int, m Mount) error {
	if err := CheckMount(m); err != nil {
		return err
	}
	attr := uint64(unix.MOUNT_ATTR_NODEV)
	if m.ReadOnly {
		attr |= unix.MOUNT_ATTR_RDONLY
	}
	var mnt int
	var err error
	isDir := true
	if m.Tmpfs {
		mnt, err = newTmpfs(m.Size, attr)
	} else {
		mnt, isDir, err = cloneSource(m.Source, attr)
	}
	if err != nil {
		return err
	}
	defer unix.Close(mnt)
	target, err := openTarget(root, m.Target, isDir)
	if err != nil {
		return err
	}
	defer unix.Close(target)
	err = unix.MoveMount(mnt, "", target, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH)
	if err != nil {
		return fmt.Errorf("move_mount: %w", err)
	}
	return nil
}

// cloneSource returns a detached bind mount of the host path src (not
// recursive: mounts below src stay out), with attr set, and whether src
// is a directory.
func cloneSource(src string, attr uint64) (int, bool, error) {
	fd, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return -1, false, fmt.Errorf("open_tree %s: %w", src, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, false, err
	}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_set: attr}); err != nil {
		unix.Close(fd)
		return -1, false, fmt.Errorf("mount_setattr %s: %w", src, err)
	}
	return fd, st.Mode&unix.S_IFMT == unix.S_IFDIR, nil
}

// newTmpfs returns a detached new tmpfs of size bytes (0: the kernel's
// default), mode 1777, nosuid and with attr.
func newTmpfs(size int64, attr uint64) (int, error) {
	fs, err := unix.Fsopen("tmpfs", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("fsopen tmpfs: %w", err)
	}
	defer unix.Close(fs)
	if err := unix.FsconfigSetString(fs, "mode", "1777"); err != nil {
		return -1, fmt.Errorf("tmpfs mode: %w", err)
	}
	if size > 0 {
		if err := unix.FsconfigSetString(fs, "size", strconv.FormatInt(size, 10)); err != nil {
			return -1, fmt.Errorf("tmpfs size %d: %w", size, err)
		}
	}
	if err := unix.FsconfigCreate(fs); err != nil {
		return -1, fmt.Errorf("tmpfs: %w", err)
	}
	fd, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, int(attr|unix.MOUNT_ATTR_NOSUID))
	if err != nil {
		return -1, fmt.Errorf("fsmount tmpfs: %w", err)
	}
	return fd, nil
}

// openTarget opens the mount target p inside the root root as an O_PATH
// descriptor: a directory, made with the directories above it when
// missing, or for a file source (dir false) a file, made empty when
// missing. A target of the other kind is an error.
func openTarget(root int, p string, dir bool) (int, error) {
	if dir {
		return beneath.MkdirAllInRoot(root, p, 0o755, markMountPoint)
	}
	fd, err := beneath.OpenInRoot(root, p, unix.O_PATH)
	if errors.Is(err, unix.ENOENT) {
		fd, err = makeFile(root, p)
	}
	if err != nil {
		return -1, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT == unix.S_IFDIR || st.Mode&unix.S_IFMT == unix.S_IFLNK {
		unix.Close(fd)
		return -1, fmt.Errorf("%s is a directory or a symbolic link, and the source a file", p)
	}
	return fd, nil
}

// makeFile makes the empty file p inside the root root, and the
// directories above it, and opens it (see upper.MountPointXattr for how
// diff leaves it out): made in the parent held, and opened
// there without following, so a link swapped in meanwhile is opened as a
// link (and refused by openTarget).
func makeFile(root int, p string) (int, error) {
	parent, err := beneath.MkdirAllInRoot(root, path.Dir(path.Clean(p)), 0o755, markMountPoint)
	if err != nil {
		return -1, err
	}
	defer unix.Close(parent)
	name := path.Base(p)
	var st unix.Stat_t
	if err := unix.Fstat(parent, &st); err != nil {
		return -1, err
	}
	f, err := unix.Openat(parent, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return -1, fmt.Errorf("create %s: %w", p, err)
	}
	if err == nil {
		// Marked, and the parent's times kept, as for a directory.
		err = unix.Fsetxattr(f, upper.MountPointXattr, []byte("y"), 0)
		unix.Close(f)
		if err == nil {
			err = beneath.Lend(parent, ".", nil).Utimes([]unix.Timespec{unix.Timespec(st.Atim), unix.Timespec(st.Mtim)})
		}
		if err != nil {
			return -1, fmt.Errorf("create %s: %w", p, err)
		}
	}
	return beneath.OpenInRoot(parent, name, unix.O_PATH|unix.O_NOFOLLOW)
}

// markMountPoint marks a directory made for a mount point, so that diff
// and commit leave it out (see upper.MountPointXattr).
func markMountPoint(at beneath.At) error {
	return at.Setxattr(upper.MountPointXattr, []byte("y"), 0)
}
