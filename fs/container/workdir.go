package container

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/acetate/acetate/fs/overlay"
	"github.com/acetate/acetate/internal/beneath"
	"golang.org/x/sys/unix"
)

// rootfsDir is the container's default mount point.
const rootfsDir = "rootfs"

// workDir is the work directory a union of the container whose directory
// is dir is mounted with by driver: scratch space on the upper directory's
// filesystem (overlayfs makes its "work" directory there, for files being
// copied up and whiteouts; the fuse driver makes files there before it
// renames them into the upper directory). It is made by the mount and
// removed after the unmount (removeWork).
//
//   - overlay: the default mount point, rootfs/. The kernel opens the work
//     directory while it sets the union up, before the union covers
//     rootfs/, and holds it from then on. rootfs/work then costs the
//     directory a work/ beside rootfs/ cost, and work/ itself is saved: a
//     mounted container's own directories are its directory and upper/,
//     as for a union mounted by hand (whose mount point hides nothing).
//   - fuse: work/. Its driver mounts first and its server opens the work
//     directory by path after: below the mount point it would open the
//     union itself.
//   - With a disk image: disk/work, in the image, beside upper/.
func workDir(dir, driver string) string {
	switch {
	case hasImage(dir):
		return filepath.Join(dir, diskMount, "work")
	case driver == (overlay.Driver{}).Name():
		return filepath.Join(dir, rootfsDir)
	}
	return filepath.Join(dir, "work")
}

// removeWork removes what the work directories of the container whose
// directory is dir hold, once no union uses them: what a driver leaves
// (overlayfs keeps a whiteout and directories in its work directory, a
// killed fuse server the files it was making), and the work/ of the
// layout before this one, which every mount made. In a disk image they
// are removed only while the image is mounted (reset and restore hold
// it); an unmounted image leaves an empty disk/ here.
//
// rootfs/work is reached through a descriptor of rootfs/ opened without
// crossing a mount. The harm this stops: a union still mounted at rootfs/
// (one this process has no record of) would have the directory named
// "work" in the container's own root removed instead.
func removeWork(dir string) error {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("work directory: %w", err)
	}
	defer unix.Close(fd)
	if err := (beneath.At{Dir: fd, Name: "work"}).RemoveAll(); err != nil {
		return fmt.Errorf("work directory: %w", err)
	}
	if hasImage(dir) {
		if err := os.RemoveAll(filepath.Join(dir, diskMount, "work")); err != nil {
			return fmt.Errorf("work directory: %w", err)
		}
	}
	rootfs, err := unix.Openat2(fd, rootfsDir, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_XDEV,
	})
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EXDEV) {
		return nil // never mounted there, or mounted there still
	}
	if err != nil {
		return fmt.Errorf("work directory: %w", err)
	}
	defer unix.Close(rootfs)
	if err := (beneath.At{Dir: rootfs, Name: "work"}).RemoveAll(); err != nil {
		return fmt.Errorf("work directory: %w", err)
	}
	return nil
}
