package container

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/acetate/acetate/fs/overlay"
	"github.com/acetate/acetate/fs/upper"
	"github.com/acetate/acetate/internal/atomicfile"
	"github.com/acetate/acetate/layers"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// DefaultDriver is the driver a container mounts with unless told.
const DefaultDriver = "overlay"

// Create makes container name from template (NAME[:TAG]), with what opts
// set (its settings: WithSettings). It does no per-file work: the layers'
// metadata trees are built the first time a layer is used and shared
// afterwards.
func (m *Manager) Create(name, template string, opts ...CreateOpt) (*Container, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	lock, err := m.store.Layers.LockShared()
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	t, err := m.store.Lookup(template)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", name, err)
	}
	root, err := m.templateRoot(t.Layers)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", name, err)
	}
	c := &Container{Name: name, Template: t.Ref.String(), Layers: t.Layers, Config: t.Config,
		Driver: DefaultDriver, Created: time.Now().UTC()}
	for _, o := range opts {
		o(c)
	}
	err = m.install(c, func(dir string) error { return upper.Init(dir, root) })
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", name, err)
	}
	return c, nil
}

// templateRoot returns the root directory of a stack as the union shows
// it, from the metadata tree of the top layer that has one.
func (m *Manager) templateRoot(stack []digest.Digest) (*layers.Entry, error) {
	metas, err := overlay.BuildMeta(m.store.Layers, stack)
	if err != nil {
		return nil, err
	}
	root, err := overlay.RootMeta(m.store.Layers, stack, metas)
	if err != nil {
		return nil, err
	}
	return upper.RootEntry(root)
}

// Clone makes container name with src's template and a copy of src's
// upper directory: every file, whiteout, opaque and redirect mark, xattr
// (trusted.* included), hardlink and hole.
func (m *Manager) Clone(src, name string) (*Container, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	s, unlock, err := m.lockWithStore(src)
	if err != nil {
		return nil, fmt.Errorf("clone: %w", err)
	}
	defer unlock()
	release, err := holdDisk(m.path(src))
	if err != nil {
		return nil, fmt.Errorf("clone %s to %s: %w", src, name, err)
	}
	defer release()
	c := *s
	c.Name, c.Created, c.Mount = name, time.Now().UTC(), nil
	err = m.install(&c, func(dir string) error { return upper.Copy(m.UpperDir(src), dir) })
	if err != nil {
		return nil, fmt.Errorf("clone %s to %s: %w", src, name, err)
	}
	return &c, nil
}

// install creates a container directory in the store's tmp/ (the upper
// directory by makeUpper, moved into a disk image when c has a disk quota,
// then config.json) and renames it to its name,
// so that a container either exists whole or not at all, and GC removes
// what a crash leaves. The caller holds the store's shared lock.
func (m *Manager) install(c *Container, makeUpper func(dir string) error) error {
	tmp, err := os.MkdirTemp(m.store.Layers.TmpDir(), "container-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := makeUpper(filepath.Join(tmp, "upper")); err != nil {
		return err
	}
	if err := settleDisk(tmp, c.Settings); err != nil {
		return err
	}
	if err := writeJSON(filepath.Join(tmp, "config.json"), c, durable); err != nil {
		return err
	}
	err = unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, m.path(c.Name), unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("%s: %w", c.Name, ErrExists)
	}
	if err != nil {
		return err
	}
	if err := atomicfile.SyncDir(m.dir); err != nil {
		return fmt.Errorf("sync %s: %w", m.dir, err)
	}
	return nil
}
