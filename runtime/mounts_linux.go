package runtime

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// mountEntry describes one mount made inside the container after pivot_root.
// Paths are container paths: they resolve inside the new root.
type mountEntry struct {
	source, target, fstype string
	flags                  uintptr
	data                   string
	// mkdir creates the target directory when missing.
	mkdir bool
	// optional skips the entry when the target does not exist (masked
	// kernel paths that this kernel lacks).
	optional bool
	// readonly remounts a bind mount read-only afterwards.
	readonly bool
}

const (
	msProc = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
)

// containerMounts is the container's file system setup, in order.
func containerMounts() []mountEntry {
	m := []mountEntry{
		{source: "proc", target: "/proc", fstype: "proc", flags: msProc, mkdir: true},
		{source: "sysfs", target: "/sys", fstype: "sysfs", flags: msProc | unix.MS_RDONLY, mkdir: true},
		{source: "tmpfs", target: "/dev", fstype: "tmpfs", flags: unix.MS_NOSUID | unix.MS_STRICTATIME, data: "mode=755,size=65536k", mkdir: true},
		// devices are created between these two groups: see makeDevices.
	}
	return m
}

// devMounts follow the device nodes in /dev.
func devMounts() []mountEntry {
	m := []mountEntry{
		{source: "devpts", target: "/dev/pts", fstype: "devpts", flags: unix.MS_NOSUID | unix.MS_NOEXEC, data: "newinstance,ptmxmode=0666,mode=0620,gid=5", mkdir: true},
		{source: "shm", target: "/dev/shm", fstype: "tmpfs", flags: msProc, data: "mode=1777,size=65536k", mkdir: true},
		{source: "mqueue", target: "/dev/mqueue", fstype: "mqueue", flags: msProc, mkdir: true, optional: true},
	}
	// Kernel files that leak host information or are dangerous: hidden
	// behind /dev/null (files) or an empty read-only tmpfs (directories).
	for _, f := range []string{"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug", "/proc/latency_stats", "/proc/timer_stats"} {
		m = append(m, mountEntry{source: "/dev/null", target: f, flags: unix.MS_BIND, optional: true})
	}
	for _, d := range []string{"/proc/acpi", "/proc/scsi", "/proc/asound", "/sys/firmware"} {
		m = append(m, mountEntry{source: "tmpfs", target: d, fstype: "tmpfs", flags: msProc | unix.MS_RDONLY, data: "size=0", optional: true})
	}
	// Kernel tunables: visible, not writable.
	for _, p := range []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"} {
		m = append(m, mountEntry{source: p, target: p, flags: unix.MS_BIND | unix.MS_REC, optional: true, readonly: true})
	}
	return m
}

// device is a node created in the container's /dev.
type device struct {
	name         string
	major, minor uint32
}

var devices = []device{
	{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7},
	{"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0},
}

var devLinks = [][2]string{
	{"/proc/self/fd", "/dev/fd"},
	{"/proc/self/fd/0", "/dev/stdin"},
	{"/proc/self/fd/1", "/dev/stdout"},
	{"/proc/self/fd/2", "/dev/stderr"},
	{"pts/ptmx", "/dev/ptmx"},
	{"/proc/kcore", "/dev/core"},
}

// setupRootfs turns the mount namespace of the calling process into the
// container's root of spec: it must run in a fresh mount namespace, as root.
// The files of spec's state directory that stand for the container's own
// (its /etc/hostname, a booted container's /etc/machine-id) are bound over
// the root's.
func setupRootfs(spec *Spec) error {
	rootfs := spec.Rootfs
	// Nothing we do here may propagate back to the host.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("failed to make mounts private: %w", err)
	}
	if err := unix.Mount(rootfs, rootfs, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("failed to bind-mount root %s: %w", rootfs, err)
	}
	// A booted systemd unmounts at shutdown what it finds mounted over
	// /etc, and fails without CAP_SYS_ADMIN: a booted container's
	// identity is written into its root instead (see writeIdentity),
	// unless the root is read-only.
	bind := !spec.Boot || spec.ReadOnly
	if f := spec.etcHostname(); f != "" && bind {
		if err := bindInRoot(rootfs, f, "etc/hostname"); err != nil {
			return err
		}
	}
	if f := spec.etcHosts(); f != "" && bind {
		if err := bindInRoot(rootfs, f, "etc/hosts"); err != nil {
			return err
		}
	}
	if f := spec.machineIDPath(); f != "" && bind {
		if err := bindEmptyMachineID(rootfs, f); err != nil {
			return err
		}
	}
	for _, path := range slices.Sorted(maps.Keys(spec.EtcFiles)) {
		if err := bindInRoot(rootfs, spec.EtcFiles[path], strings.TrimPrefix(path, "/")); err != nil {
			return err
		}
	}
	if err := mountVolumes(rootfs, spec.Mounts); err != nil {
		return err
	}
	if err := remountRoot(rootfs, 0); err != nil {
		return err
	}
	if err := pivotRoot(rootfs); err != nil {
		return err
	}
	// From here on every path resolves inside the container, symlinks
	// included.
	mounts := containerMounts()
	if spec.Boot {
		mounts = append(mounts, bootMounts()...)
	}
	for _, m := range mounts {
		if err := doMount(m); err != nil {
			return err
		}
	}
	if err := makeDevices(); err != nil {
		return err
	}
	for _, m := range devMounts() {
		if err := doMount(m); err != nil {
			return err
		}
	}
	if !bind {
		if err := spec.writeIdentity(); err != nil {
			return err
		}
	}
	if spec.ReadOnly {
		return remountRoot("/", unix.MS_RDONLY)
	}
	return nil
}

// bindInRoot binds the host file src, read-only, over the container's file
// path, which resolves inside rootfs (symlinks and ".." included, openat2
// RESOLVE_IN_ROOT, Linux 5.6+) and so never reaches a host file. A path the
// root lacks, or that is not a regular file, is left alone: the container
// chose so. The bind is made, then the path opened again to reach the new
// mount and make it read-only, the way runc mounts through descriptors.
func bindInRoot(rootfs, src, path string) error {
	regular := false
	err := atPath(rootfs, path, func(target string, st *unix.Stat_t) error {
		if regular = st.Mode&unix.S_IFMT == unix.S_IFREG; !regular {
			return nil
		}
		return unix.Mount(src, target, "", unix.MS_BIND, "")
	})
	if err == nil && regular {
		err = atPath(rootfs, path, func(target string, _ *unix.Stat_t) error {
			return unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|msProc, "")
		})
	}
	if err != nil {
		return fmt.Errorf("failed to bind %s on the container's /%s: %w", src, path, err)
	}
	return nil
}

// atPath calls do with a /proc/self/fd path of path, opened (O_PATH)
// inside rootfs, and its status; a missing path is no error and no call.
func atPath(rootfs, path string, do func(target string, st *unix.Stat_t) error) error {
	root, err := unix.Open(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(root)
	fd, err := unix.Openat2(root, path, &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT})
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	return do(fmt.Sprintf("/proc/self/fd/%d", fd), &st)
}

// remountRoot sets the flags of the container's bind mount of its root:
// nodev, so that no device node in the template or the upper directory
// opens (the container's /dev is the tmpfs made here), and set-uid honoured
// whatever the host's mount of the root says (see "Set-uid binaries" in the
// package doc). This mount is the container's alone: the host's keeps its
// own flags.
func remountRoot(path string, extra uintptr) error {
	if err := unix.Mount("", path, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_NODEV|extra, ""); err != nil {
		return fmt.Errorf("failed to remount root %s nodev: %w", path, err)
	}
	return nil
}

// pivotRoot makes rootfs the root and detaches the old root. It uses
// pivot_root(".", "."), which needs no directory for the old root, so a
// read-only image works too.
func pivotRoot(rootfs string) error {
	if err := unix.Chdir(rootfs); err != nil {
		return fmt.Errorf("failed to enter root %s: %w", rootfs, err)
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("failed to pivot_root into %s: %w", rootfs, err)
	}
	// The old root is now stacked on "/": detach it.
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("failed to detach old root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("failed to enter new root: %w", err)
	}
	return nil
}

// doMount performs m. It stats nothing first: a missing target shows as
// ENOENT from mount(2) itself (lookups in /proc are not cheap, and a start
// makes about twenty mounts).
func doMount(m mountEntry) error {
	err := unix.Mount(m.source, m.target, m.fstype, m.flags, m.data)
	if errors.Is(err, unix.ENOENT) {
		switch {
		case m.mkdir:
			if err := os.MkdirAll(m.target, 0o755); err != nil {
				return fmt.Errorf("failed to create mount point %s: %w", m.target, err)
			}
			err = unix.Mount(m.source, m.target, m.fstype, m.flags, m.data)
		case m.optional:
			return nil // a kernel file this kernel lacks
		}
	}
	if err != nil {
		if m.optional && errors.Is(err, unix.ENODEV) {
			return nil // a file system this kernel lacks
		}
		return fmt.Errorf("failed to mount %s on %s: %w", m.source, m.target, err)
	}
	if m.readonly {
		flags := uintptr(unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY)
		if err := unix.Mount("", m.target, "", flags|msProc, ""); err != nil {
			return fmt.Errorf("failed to remount %s read-only: %w", m.target, err)
		}
	}
	return nil
}

func makeDevices() error {
	old := unix.Umask(0)
	defer unix.Umask(old)
	for _, d := range devices {
		p := "/dev/" + d.name
		if err := unix.Mknod(p, unix.S_IFCHR|0o666, int(unix.Mkdev(d.major, d.minor))); err != nil {
			return fmt.Errorf("failed to create device %s: %w", p, err)
		}
	}
	for _, l := range devLinks {
		if err := os.Symlink(l[0], l[1]); err != nil {
			return fmt.Errorf("failed to create %s: %w", l[1], err)
		}
	}
	return nil
}
