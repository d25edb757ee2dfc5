package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// OpenRoot opens container name's root as the container sees it, for a
// copy in or out (acetate cp), and returns it with release, which closes it
// and unmounts what OpenRoot mounted. A running container's root is its
// init's (/proc/PID/root, with the container's own mounts in it: volumes,
// tmpfs, /proc); a mounted one's is its mount point; a stopped one is
// mounted with its driver for the time of the copy. Paths inside must be
// resolved with RESOLVE_IN_ROOT from the descriptor (package
// fs/archive).
//
// The attack checked here: the container ends between the moment its
// init's pid is read and the moment /proc/PID/root is opened, and a host
// process gets that pid; the copy would then work on the host's root. The
// root opened must be the very directory mounted for the container (same
// device and inode as its mount point), else OpenRoot fails.
func (m *Manager) OpenRoot(ctx context.Context, name string) (root *os.File, release func() error, err error) {
	pid := 0
	if m.running != nil {
		if pid, err = m.running(name); err != nil {
			return nil, nil, fmt.Errorf("container %s: %w", name, err)
		}
	}
	c, err := m.Get(name)
	if err != nil {
		return nil, nil, err
	}
	if pid != 0 && c.Mount != nil {
		root, err := openRunningRoot(pid, c.Mount.Target)
		if err != nil {
			return nil, nil, fmt.Errorf("container %s: %w", name, err)
		}
		return root, root.Close, nil
	}
	mounted := false
	if alive, err := MountAlive(c); err != nil {
		return nil, nil, err
	} else if !alive {
		if c, err = m.Mount(ctx, name, "", ""); err != nil {
			return nil, nil, err
		}
		mounted = true
	}
	root, err = os.OpenFile(c.Mount.Target, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		err = fmt.Errorf("container %s: %w", name, err)
	}
	release = func() error {
		if root != nil {
			root.Close()
		}
		if !mounted {
			return nil
		}
		// A start may have taken the mount over meanwhile: it is its own.
		if err := m.Unmount(name); err != nil && !errors.Is(err, ErrRunning) && !errors.Is(err, ErrNotMounted) {
			return err
		}
		return nil
	}
	if err != nil {
		release()
		return nil, nil, err
	}
	return root, release, nil
}

// openRunningRoot opens the root of the process pid and checks it is the
// directory mounted at target.
func openRunningRoot(pid int, target string) (*os.File, error) {
	root, err := os.OpenFile("/proc/"+strconv.Itoa(pid)+"/root", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	var got, want unix.Stat_t
	if err := unix.Fstat(int(root.Fd()), &got); err != nil {
		root.Close()
		return nil, err
	}
	if err := unix.Stat(target, &want); err != nil {
		root.Close()
		return nil, err
	}
	if got.Dev != want.Dev || got.Ino != want.Ino {
		root.Close()
		return nil, fmt.Errorf("the root of pid %d is not the container's (%s): did it just stop?", pid, target)
	}
	return root, nil
}
