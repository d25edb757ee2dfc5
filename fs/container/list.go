package container

import (
	"errors"
	"fmt"
	"os"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// List returns every container, sorted by name.
func (m *Manager) List() ([]*Container, error) {
	ents, err := os.ReadDir(m.dir)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	var out []*Container
	for _, e := range ents {
		if ValidateName(e.Name()) != nil {
			continue // not a container
		}
		c, err := m.Get(e.Name())
		if errors.Is(err, ErrNotFound) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// Roots lists the layers every container and every snapshot of one uses,
// so that GC keeps them; it has the type templates.Roots.
func (m *Manager) Roots() ([]digest.Digest, error) {
	cs, err := m.List()
	if err != nil {
		return nil, err
	}
	var out []digest.Digest
	for _, c := range cs {
		out = append(out, c.Layers...)
		snaps, err := m.Snapshots(c.Name)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		for _, s := range snaps {
			out = append(append(out, s.Layer), s.Container.Layers...)
		}
	}
	return out, nil
}

// Remove deletes container name. A mounted container is refused with
// ErrMounted unless force, which unmounts it first (detaching it if busy).
func (m *Manager) Remove(name string, force bool) error {
	c, unlock, err := m.lockWithStore(name)
	if err != nil {
		return err
	}
	defer unlock()
	mounted, err := m.mounted(c)
	if err != nil {
		return err
	}
	if mounted && !force {
		return fmt.Errorf("%s at %s (unmount it, or use force): %w", name, c.Mount.Target, ErrMounted)
	}
	if mounted {
		if err := m.unmount(c, true); err != nil {
			return err
		}
	}
	if err := releaseDisk(m.path(name)); err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	// Rename over an empty directory in the store's tmp/: the name
	// disappears at once, and GC removes what a crash leaves.
	trash, err := os.MkdirTemp(m.store.Layers.TmpDir(), "rm-")
	if err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	if err := unix.Rename(m.path(name), trash); err != nil {
		os.Remove(trash)
		return fmt.Errorf("remove %s: %w", name, err)
	}
	if err := os.RemoveAll(trash); err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	return nil
}
