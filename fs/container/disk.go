package container

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/acetate/acetate/fs/diskimage"
	"github.com/acetate/acetate/fs/upper"
	"github.com/acetate/acetate/internal/atomicfile"
	"golang.org/x/sys/unix"
)

// A container with a disk quota (Settings.Disk) keeps its differences in a
// disk image of its own, for both drivers (see package fs/diskimage):
//
//	disk.img  a sparse ext4 file of the quota's size
//	disk/     its mount point while in use, holding upper/ and work/
//
// The kernel's ext4 enforces the quota for the overlay driver and the fuse
// driver alike, at the speed of a plain filesystem (the fuse driver's
// writes are FUSE passthrough writes the server never sees), answers a
// write past it with ENOSPC, as a full filesystem does (not EDQUOT: the
// container sees a disk of the quota's size, as in a Virtuozzo container,
// and its programs handle a full disk, where a quota error on a
// filesystem with free space, as df shows it, would puzzle them), and
// gives df in
// the container the quota as its size and the differences as its use
// (both drivers answer statfs with the upper directory's filesystem). So
// the quota holds across remounts, driver switches and a kill -9 of the
// fuse server without any counter to keep: the image is the count.
//
// The image is mounted with the container and unmounted with it; diff,
// commit, clone, rebase and reset of an unmounted container mount it for
// their own duration.
//
// Set grows the quota of a mounted (or running) container online, where
// this process has CAP_SYS_RESOURCE, as ext4's online resize requires;
// every other change is done on an unmounted container (a mounted one is
// refused): a grow or shrink resizes the image offline (ext4 shrinks only
// offline), a shrink below use is refused and changes nothing;
// adding a quota to a container that has a plain upper directory copies it
// into a new image (refused, with nothing changed, when it does not fit),
// removing it copies it back out, and a new inode limit, or a new size with
// an inode limit (a resize would add inodes with the blocks), copies it
// into a new image.
const (
	diskImage = "disk.img"
	diskMount = "disk"
	// xattrLimits on the image records the Settings it was made for,
	// "DISK INODES"; xattrUsed what it used at its last unmount,
	// "BYTES INODES", for ls while it is not mounted.
	xattrLimits = "user.acetate.limits"
	xattrUsed   = "user.acetate.used"
)

// QuotaUsage is a container's use against its disk quota.
type QuotaUsage struct {
	// Disk and Inodes are the quota (Inodes 0: ext4's, one per 4 KiB).
	Disk, Inodes int64
	// Used and UsedInodes are what its differences use, as df inside
	// shows it: from the mounted image, else as its last unmount left it.
	Used, UsedInodes int64
}

// Quota returns container name's use against its disk quota, or nil when
// it has none.
func (m *Manager) Quota(name string) (*QuotaUsage, error) {
	c, err := m.Get(name)
	if err != nil {
		return nil, err
	}
	dir := m.path(name)
	if c.Settings.Disk == 0 || !hasImage(dir) {
		return nil, nil
	}
	q := &QuotaUsage{Disk: c.Settings.Disk, Inodes: c.Settings.Inodes}
	if mounted, _ := diskimage.Mounted(filepath.Join(dir, diskMount)); mounted {
		u, err := diskimage.Stat(filepath.Join(dir, diskMount))
		if err != nil {
			return nil, err
		}
		q.Used, q.UsedInodes = u.UsedBytes, u.UsedInodes
		return q, nil
	}
	if v, err := getxattr(filepath.Join(dir, diskImage), xattrUsed); err == nil {
		fmt.Sscan(v, &q.Used, &q.UsedInodes)
	}
	return q, nil
}

// upperDir is the upper directory of the container whose directory is
// dir: in its disk image when it has one.
func upperDir(dir string) string {
	if hasImage(dir) {
		return filepath.Join(dir, diskMount, "upper")
	}
	return filepath.Join(dir, "upper")
}

func hasImage(dir string) bool {
	_, err := os.Lstat(filepath.Join(dir, diskImage))
	return err == nil
}

// holdDisk mounts the disk image of the container whose directory is dir,
// when it has one that is not mounted yet; release unmounts what holdDisk
// mounted, and nothing else.
func holdDisk(dir string) (release func() error, err error) {
	none := func() error { return nil }
	if !hasImage(dir) {
		return none, nil
	}
	mnt := filepath.Join(dir, diskMount)
	if mounted, err := diskimage.Mounted(mnt); err != nil || mounted {
		return none, err
	}
	if err := os.MkdirAll(mnt, 0o700); err != nil {
		return nil, fmt.Errorf("disk: %w", err)
	}
	if err := diskimage.Mount(filepath.Join(dir, diskImage), mnt); err != nil {
		return nil, err
	}
	return func() error { return releaseDisk(dir) }, nil
}

// releaseDisk records the use of the mounted image of the container whose
// directory is dir and unmounts it, once its union is gone. An image not
// mounted is left.
func releaseDisk(dir string) error {
	mnt := filepath.Join(dir, diskMount)
	mounted, err := diskimage.Mounted(mnt)
	if err != nil || !mounted {
		return err
	}
	recordUse(filepath.Join(dir, diskImage), mnt)
	// A fuse server lets go of the files it passes through only as it
	// exits, just after its mount is gone (on a loaded machine, seconds
	// later). The union is gone: nothing else holds the image, so it is
	// detached after a while, and the kernel unmounts it and frees its
	// loop device once the server has exited.
	for range 100 {
		if err = diskimage.Unmount(mnt, false); !errors.Is(err, unix.EBUSY) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if errors.Is(err, unix.EBUSY) {
		err = diskimage.Unmount(mnt, true)
	}
	return err
}

// recordUse keeps on the image img, mounted at mnt, what it uses now, for
// Quota while it is not mounted. Failing, Quota shows an older use.
func recordUse(img, mnt string) {
	if u, err := diskimage.Stat(mnt); err == nil {
		v := fmt.Sprintf("%d %d", u.UsedBytes, u.UsedInodes)
		unix.Setxattr(img, xattrUsed, []byte(v), 0)
	}
}

// imageUse is what the disk image of the container whose directory is dir
// used when it was last unmounted (its upper directory is out of reach
// until it is mounted again); 0 without an image.
func imageUse(dir string) int64 {
	var used int64
	if v, err := getxattr(filepath.Join(dir, diskImage), xattrUsed); err == nil {
		fmt.Sscan(v, &used)
	}
	return used
}

// settleDisk makes the storage of the unmounted container whose directory
// is dir match the quota of s: no image without a quota, an image made
// for s's limits with one. What a crash left half made is removed first.
// On error the container's storage is as it was.
func settleDisk(dir string, s Settings) error {
	if err := ValidateQuota(s); err != nil {
		return err
	}
	// An image left mounted without its union (a crash between the two
	// mounts) is unmounted before it is resized or copied.
	if err := releaseDisk(dir); err != nil {
		return err
	}
	img := filepath.Join(dir, diskImage)
	if err := removeStaging(dir); err != nil {
		return err
	}
	want := limitsText(s)
	if !hasImage(dir) {
		if s.Disk == 0 {
			return nil
		}
		return rebuild(dir, s)
	}
	// A crash between moving an image in and removing the plain upper
	// directory it was copied from leaves that directory.
	if err := os.RemoveAll(filepath.Join(dir, "upper")); err != nil {
		return fmt.Errorf("disk: %w", err)
	}
	have, err := getxattr(img, xattrLimits)
	if err != nil {
		return err
	}
	switch {
	case have == want:
		return nil
	case s.Disk != 0 && s.Inodes == 0 && strings.HasSuffix(have, " 0"):
		if err := diskimage.Resize(img, s.Disk); err != nil {
			return fmt.Errorf("disk quota %d bytes: %w", s.Disk, err)
		}
		return setxattr(img, xattrLimits, want)
	default:
		return rebuild(dir, s)
	}
}

// limitsText is the xattrLimits value of s.
func limitsText(s Settings) string { return fmt.Sprintf("%d %d", s.Disk, s.Inodes) }

// Names staged beside a container's storage while rebuild copies it.
const (
	stagedImage = "disk.img.new"
	stagedMount = "disk.new"
	stagedUpper = "upper.new"
)

// removeStaging removes what an interrupted rebuild left in dir.
func removeStaging(dir string) error {
	mnt := filepath.Join(dir, stagedMount)
	if mounted, _ := diskimage.Mounted(mnt); mounted {
		if err := diskimage.Unmount(mnt, true); err != nil {
			return err
		}
	}
	for _, n := range []string{stagedImage, stagedMount, stagedUpper} {
		if err := os.RemoveAll(filepath.Join(dir, n)); err != nil {
			return fmt.Errorf("disk: %w", err)
		}
	}
	return nil
}

// rebuild copies the container's differences into new storage made for
// s's quota (an image, or a plain upper directory without a quota) and
// swaps it in with a rename. Differences that do not fit are refused.
func rebuild(dir string, s Settings) (err error) {
	defer func() {
		if err != nil {
			removeStaging(dir)
		}
	}()
	release, err := holdDisk(dir)
	if err != nil {
		return err
	}
	defer release()
	src := upperDir(dir)
	if s.Disk == 0 {
		if err := upper.Copy(src, filepath.Join(dir, stagedUpper)); err != nil {
			return fmt.Errorf("disk: copy the differences out of the image: %w", err)
		}
		if err := release(); err != nil {
			return err
		}
		if err := os.RemoveAll(filepath.Join(dir, "upper")); err != nil {
			return fmt.Errorf("disk: %w", err)
		}
		if err := os.Rename(filepath.Join(dir, stagedUpper), filepath.Join(dir, "upper")); err != nil {
			return fmt.Errorf("disk: %w", err)
		}
		return removeImage(dir)
	}
	img, mnt := filepath.Join(dir, stagedImage), filepath.Join(dir, stagedMount)
	if err := diskimage.Create(img, diskimage.Limits{Bytes: s.Disk, Inodes: s.Inodes}); err != nil {
		return fmt.Errorf("disk quota %d bytes: %w", s.Disk, err)
	}
	if err := setxattr(img, xattrLimits, limitsText(s)); err != nil {
		return err
	}
	if err := os.Mkdir(mnt, 0o700); err != nil {
		return fmt.Errorf("disk: %w", err)
	}
	if err := diskimage.Mount(img, mnt); err != nil {
		return err
	}
	err = makeReserve(mnt)
	if err == nil {
		err = upper.Copy(src, filepath.Join(mnt, "upper"))
	}
	if errors.Is(err, unix.ENOSPC) {
		err = fmt.Errorf("the container's differences do not fit in %d bytes (%d inodes): %w", s.Disk, s.Inodes, err)
	}
	if err == nil {
		err = os.Mkdir(filepath.Join(mnt, "work"), 0o700)
	}
	recordUse(img, mnt)
	if uerr := diskimage.Unmount(mnt, false); err == nil {
		err = uerr
	}
	if err != nil {
		return fmt.Errorf("disk: %w", err)
	}
	if err := release(); err != nil {
		return err
	}
	if err := os.Rename(img, filepath.Join(dir, diskImage)); err != nil {
		return fmt.Errorf("disk: %w", err)
	}
	if err := atomicfile.SyncDir(dir); err != nil {
		return fmt.Errorf("disk: %w", err)
	}
	for _, n := range []string{"upper", "work", stagedMount} {
		if err := os.RemoveAll(filepath.Join(dir, n)); err != nil {
			return fmt.Errorf("disk: %w", err)
		}
	}
	return nil
}

// reserve is a directory of the image beside upper/ and work/ that holds
// a few inodes and blocks for the union's own use: overlayfs probes its
// work directory at each mount (a temporary file, a whiteout, work/work),
// and on an image the container filled up the mount would fail. The
// reserve is freed just before the union mounts and made again just after,
// before anything of the container runs.
const reserve = "reserve"

// makeReserve makes the reserve in the image mounted at mnt, if missing.
func makeReserve(mnt string) error {
	dir := filepath.Join(mnt, reserve)
	if _, err := os.Lstat(dir); err == nil {
		return nil
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return fmt.Errorf("disk: reserve: %w", err)
	}
	for i := range 4 {
		if err := os.WriteFile(filepath.Join(dir, strconv.Itoa(i)), make([]byte, 16<<10), 0o600); err != nil {
			return fmt.Errorf("disk: reserve: %w", err)
		}
	}
	return nil
}

// freeReserve removes the reserve of the container whose directory is dir,
// when it has an image (mounted).
func freeReserve(dir string) error {
	if !hasImage(dir) {
		return nil
	}
	if err := os.RemoveAll(filepath.Join(dir, diskMount, reserve)); err != nil {
		return fmt.Errorf("disk: reserve: %w", err)
	}
	return nil
}

// removeImage removes the image of the container whose directory is dir
// and its mount point, after its differences moved out.
func removeImage(dir string) error {
	if err := os.Remove(filepath.Join(dir, diskImage)); err != nil {
		return fmt.Errorf("disk: %w", err)
	}
	if err := os.RemoveAll(filepath.Join(dir, diskMount)); err != nil {
		return fmt.Errorf("disk: %w", err)
	}
	return atomicfile.SyncDir(dir)
}

// applyQuota makes the storage of container c match the quota of s, the
// settings set is about to write: any change while it is not mounted, only
// an online grow (see diskimage.Grow) while it is.
func (m *Manager) applyQuota(c *Container, s Settings) error {
	if err := ValidateQuota(s); err != nil {
		return err
	}
	if s.Disk == c.Settings.Disk && s.Inodes == c.Settings.Inodes {
		return nil
	}
	mounted, err := m.mounted(c)
	if err != nil {
		return err
	}
	if !mounted {
		return settleDisk(m.path(c.Name), s)
	}
	dir := m.path(c.Name)
	if !hasImage(dir) || s.Disk < c.Settings.Disk || s.Inodes != 0 || c.Settings.Inodes != 0 {
		return fmt.Errorf("change the disk quota: only a grow without an inode limit is done while mounted; %s at %s (unmount it first): %w",
			c.Name, c.Mount.Target, ErrMounted)
	}
	img := filepath.Join(dir, diskImage)
	if err := diskimage.Grow(img, filepath.Join(dir, diskMount), s.Disk); err != nil {
		if errors.Is(err, diskimage.ErrOnlineGrow) {
			err = fmt.Errorf("%w; %s at %s (unmount it first): %w", err, c.Name, c.Mount.Target, ErrMounted)
		}
		return fmt.Errorf("change the disk quota: %w", err)
	}
	return setxattr(img, xattrLimits, limitsText(s))
}

// removeResetStaging removes the reset- directories an interrupted reset
// left in the mounted disk image at mnt.
func removeResetStaging(mnt string) error {
	old, _ := filepath.Glob(filepath.Join(mnt, "reset-*"))
	for _, d := range old {
		if err := os.RemoveAll(d); err != nil {
			return fmt.Errorf("disk: %w", err)
		}
	}
	return nil
}

// ValidateQuota checks the quota settings of s: a disk quota of at least
// diskimage.MinBytes, and an inode limit only with a disk quota.
func ValidateQuota(s Settings) error {
	switch {
	case s.Disk < 0 || s.Inodes < 0:
		return errors.New("disk quota: sizes must not be negative")
	case s.Disk != 0 && s.Disk < diskimage.MinBytes:
		return fmt.Errorf("disk quota %d bytes: the least is %d (8M)", s.Disk, int64(diskimage.MinBytes))
	case s.Inodes != 0 && s.Disk == 0:
		return errors.New("an inode limit needs a disk quota (--disk) too")
	}
	return nil
}

func getxattr(path, name string) (string, error) {
	buf := make([]byte, 64)
	n, err := unix.Getxattr(path, name, buf)
	if err != nil {
		return "", fmt.Errorf("disk: %s of %s: %w", name, path, err)
	}
	return string(buf[:n]), nil
}

func setxattr(path, name, value string) error {
	if err := unix.Setxattr(path, name, []byte(value), 0); err != nil {
		return fmt.Errorf("disk: %s of %s: %w", name, path, err)
	}
	return nil
}
