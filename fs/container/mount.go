package container

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/acetate/acetate/fs"
	"github.com/acetate/acetate/fs/overlay"
	"golang.org/x/sys/unix"
)

// Mount mounts container name with the driver called driver (when empty,
// its driver setting, else its default) at target (its rootfs/ directory
// when empty, created if missing). A mount left by a crash (the state says
// mounted but the mount is gone or its server is dead) is cleaned up
// first; a live one is ErrMounted.
func (m *Manager) Mount(ctx context.Context, name, driver, target string) (*Container, error) {
	c, unlock, err := m.lock(name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := m.clearStale(c); err != nil {
		return nil, err
	}
	if c.Mount != nil {
		return nil, fmt.Errorf("%s at %s: %w", name, c.Mount.Target, ErrMounted)
	}
	if driver == "" {
		driver = cmp.Or(c.Settings.Driver, c.Driver)
	}
	d, err := Driver(driver)
	if err != nil {
		return nil, err
	}
	if target == "" {
		target = m.path(name, rootfsDir)
	}
	if target, err = filepath.Abs(target); err != nil {
		return nil, err
	}
	if err := settleDisk(m.path(name), c.Settings); err != nil {
		return nil, fmt.Errorf("mount %s: %w", name, err)
	}
	release, err := holdDisk(m.path(name))
	if err != nil {
		return nil, fmt.Errorf("mount %s: %w", name, err)
	}
	if err := freeReserve(m.path(name)); err != nil {
		release()
		return nil, fmt.Errorf("mount %s: %w", name, err)
	}
	c, err = m.mountUnion(ctx, c, d, target)
	if err != nil {
		release()
		return nil, err
	}
	if hasImage(m.path(name)) {
		// Failing, the container only has no reserve until its next
		// mount (see reserve).
		makeReserve(m.path(name, diskMount))
	}
	return c, nil
}

// mountUnion mounts the union of c with driver d at target, once its
// disk image, if it has one, is mounted.
func (m *Manager) mountUnion(ctx context.Context, c *Container, d fs.Driver, target string) (*Container, error) {
	name := c.Name
	work := workDir(m.path(name), d.Name())
	for _, dir := range []string{target, work} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("mount %s: %w", name, err)
		}
	}
	lock, err := m.store.Layers.LockShared()
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	m.keepDiffUsage(name, false)
	spec := fs.Spec{Store: m.store.Layers, Layers: c.Layers, Upper: m.UpperDir(name),
		Work: work, Target: target}
	if err := d.Mount(ctx, spec); err != nil {
		return nil, fmt.Errorf("mount %s: %w", name, err)
	}
	c.Mount = &MountState{Driver: d.Name(), Target: target}
	if err := writeMountRecord(m.path(name), c.Mount); err != nil {
		d.Unmount(target)
		return nil, fmt.Errorf("mount %s: %w", name, err)
	}
	return c, nil
}

// Unmount unmounts container name. A mount that is already gone only has
// its state cleared; a container that is not mounted is ErrNotMounted.
func (m *Manager) Unmount(name string) error {
	c, unlock, err := m.lock(name)
	if err != nil {
		return err
	}
	defer unlock()
	if c.Mount == nil {
		return fmt.Errorf("%s: %w", name, ErrNotMounted)
	}
	if err := m.requireStopped(name); err != nil {
		return fmt.Errorf("unmount: %w", err)
	}
	return m.unmount(c, false)
}

// unmount unmounts c, if its mount is still there, and clears its state;
// force detaches a busy mount.
func (m *Manager) unmount(c *Container, force bool) error {
	mounted, err := overlay.Mounted(c.Mount.Target)
	if err != nil {
		return fmt.Errorf("unmount %s: %w", c.Name, err)
	}
	detached := false
	if mounted {
		d, err := Driver(c.Mount.Driver)
		if err != nil {
			return err
		}
		err = d.Unmount(c.Mount.Target)
		if err != nil && force {
			detached, err = true, unix.Unmount(c.Mount.Target, unix.MNT_DETACH)
		}
		if err != nil {
			return fmt.Errorf("unmount %s: %w", c.Name, err)
		}
	}
	m.keepDiffUsage(c.Name, true)
	if err := releaseDisk(m.path(c.Name)); err != nil {
		return fmt.Errorf("unmount %s: %w", c.Name, err)
	}
	// After the image is released: its work directory stays in it. A
	// detached union may still be in use, and with it its work directory.
	// Failing, what is left is scratch no one reads, removed by the next
	// unmount or reset: it must not keep the container mounted.
	if !detached {
		removeWork(m.path(c.Name))
	}
	if err := removeMountRecord(m.path(c.Name)); err != nil {
		return fmt.Errorf("unmount %s: %w", c.Name, err)
	}
	c.Mount = nil
	return nil
}

// clearStale cleans up after a mount that is recorded but gone or dead.
func (m *Manager) clearStale(c *Container) error {
	if c.Mount == nil {
		return nil
	}
	alive, err := MountAlive(c)
	if err != nil || alive {
		return err
	}
	return m.unmount(c, true)
}

// mounted reports whether c is mounted, after cleaning up a stale mount.
func (m *Manager) mounted(c *Container) (bool, error) {
	if err := m.clearStale(c); err != nil {
		return false, err
	}
	return c.Mount != nil, nil
}
