package container

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/acetate/acetate/fs/upper"
	"github.com/acetate/acetate/internal/atomicfile"
	"github.com/acetate/acetate/layers"
	"github.com/acetate/acetate/templates"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// entries returns the merged tree of a stack of layers.
func (m *Manager) entries(stack []digest.Digest) ([]layers.Entry, error) {
	ms := make([]*layers.Manifest, len(stack))
	for i, d := range stack {
		man, err := m.store.Layers.ReadLayer(d)
		if err != nil {
			return nil, err
		}
		ms[i] = man
	}
	return layers.Merge(ms), nil
}

// Diff lists what container name added, changed and deleted relative to
// its template, as docker diff does. It takes the container's lock: it
// may mount the container's disk image.
func (m *Manager) Diff(name string) ([]upper.Change, error) {
	c, unlock, err := m.lock(name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	release, err := holdDisk(m.path(name))
	if err != nil {
		return nil, fmt.Errorf("diff %s: %w", name, err)
	}
	defer release()
	base, err := m.entries(c.Layers)
	if err != nil {
		return nil, fmt.Errorf("diff %s: %w", name, err)
	}
	ch, err := upper.Changes(m.UpperDir(name), base)
	if err != nil {
		return nil, fmt.Errorf("diff %s: %w", name, err)
	}
	return ch, nil
}

// Commit makes template ref from container name: its layers plus one new
// layer holding its differences, deduplicated against the store. The
// container is left as it is. On any error, or a crash, nothing is
// referenced: the store is as before but for staged files GC removes.
func (m *Manager) Commit(ctx context.Context, name string, ref templates.Ref, p layers.Progress) (*templates.Template, error) {
	c, unlock, err := m.lockWithStore(name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := m.requireStopped(name); err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	release, err := holdDisk(m.path(name))
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", name, err)
	}
	defer release()
	base, err := m.entries(c.Layers)
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", name, err)
	}
	tree, err := upper.Layer(ctx, m.store.Layers, m.UpperDir(name), base, p)
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", name, err)
	}
	d, err := tree.Commit(tree.Manifest)
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", name, err)
	}
	t := &templates.Template{Ref: ref, Layers: append(append([]digest.Digest(nil), c.Layers...), d),
		Config: c.Config, Base: c.Template, Created: time.Now().UTC()}
	if err := m.store.Save(t); err != nil {
		return nil, fmt.Errorf("commit %s: %w", name, err)
	}
	return t, nil
}

// Reset drops every difference of container name, which must not be
// mounted. The new empty upper directory replaces the old one in one
// atomic exchange.
func (m *Manager) Reset(name string) error {
	c, unlock, err := m.lockWithStore(name)
	if err != nil {
		return err
	}
	defer unlock()
	if err := m.requireStopped(name); err != nil {
		return fmt.Errorf("reset: %w", err)
	}
	if err := m.requireUnmounted(c); err != nil {
		return fmt.Errorf("reset: %w", err)
	}
	root, err := m.templateRoot(c.Layers)
	if err != nil {
		return fmt.Errorf("reset %s: %w", name, err)
	}
	// The new upper directory is made in the store's tmp/, where GC
	// removes what a crash leaves, and swapped in in one atomic exchange;
	// with a disk image, in the image (the next reset removes what a
	// crash leaves there).
	staging := m.store.Layers.TmpDir()
	release, err := holdDisk(m.path(name))
	if err != nil {
		return fmt.Errorf("reset %s: %w", name, err)
	}
	defer release()
	if hasImage(m.path(name)) {
		staging = filepath.Join(m.path(name), diskMount)
		if err := removeResetStaging(staging); err != nil {
			return fmt.Errorf("reset %s: %w", name, err)
		}
	}
	tmp, err := os.MkdirTemp(staging, "reset-")
	if err != nil {
		return fmt.Errorf("reset %s: %w", name, err)
	}
	defer os.RemoveAll(tmp)
	fresh := filepath.Join(tmp, "upper")
	if err := upper.Init(fresh, root); err != nil {
		return fmt.Errorf("reset %s: %w", name, err)
	}
	if err := unix.Renameat2(unix.AT_FDCWD, fresh, unix.AT_FDCWD, m.UpperDir(name), unix.RENAME_EXCHANGE); err != nil {
		return fmt.Errorf("reset %s: %w", name, err)
	}
	if err := atomicfile.SyncDir(m.path(name)); err != nil {
		return fmt.Errorf("reset %s: %w", name, err)
	}
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("reset %s: remove old differences: %w", name, err)
	}
	return removeWork(m.path(name))
}

// requireUnmounted returns ErrMounted when c is mounted.
func (m *Manager) requireUnmounted(c *Container) error {
	mounted, err := m.mounted(c)
	if err != nil {
		return err
	}
	if mounted {
		return fmt.Errorf("%s at %s (unmount it first): %w", c.Name, c.Mount.Target, ErrMounted)
	}
	return nil
}
