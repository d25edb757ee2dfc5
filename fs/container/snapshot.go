package container

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/acetate/acetate/fs/upper"
	"github.com/acetate/acetate/internal/atomicfile"
	"github.com/acetate/acetate/layers"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// Errors of snapshots.
var (
	// ErrSnapshotNotFound: the container has no snapshot of that name.
	ErrSnapshotNotFound = errors.New("snapshot not found")
	// ErrSnapshotExists: the container has a snapshot of that name already.
	ErrSnapshotExists = errors.New("snapshot exists")
)

// Snapshot is one snapshot of a container: its upper directory as a layer
// of the store (see upper.Snapshot: every entry verbatim, content shared
// with everything else in the store) and its record (template, layers,
// settings) when it was taken. It is kept in
// containers/NAME/snapshots/SNAP.json; GC keeps its layers (see Roots),
// and removing the container removes its snapshots.
type Snapshot struct {
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
	// Layer is the upper directory.
	Layer digest.Digest `json:"layer"`
	// Container is the container's record then (no mount state).
	Container Container `json:"container"`
	// Frozen is how long the container's processes were frozen for the
	// capture; 0 for a container that was not running.
	Frozen time.Duration `json:"frozenNs,omitempty"`
	// Files and Bytes count the upper directory's regular files and their
	// content (a hardlink group once).
	Files int   `json:"files"`
	Bytes int64 `json:"bytes"`
}

// FreezeFunc runs capture with the container's processes kept from
// writing (frozen) and returns how long they were; see SnapshotOptions.
type FreezeFunc func(capture func() error) (time.Duration, error)

// SnapshotOptions say how a snapshot is taken.
type SnapshotOptions struct {
	// Freeze, when set, lets a running container be snapshotted: the
	// capture of its upper directory runs inside it (the runtime freezes
	// the container's processes for that long). Without it a running
	// container is refused with ErrRunning.
	Freeze FreezeFunc
	// Progress reports the capture's bytes.
	Progress layers.Progress
}

// snapshotDir is where container name's snapshots are kept.
func (m *Manager) snapshotDir(name string) string { return m.path(name, "snapshots") }

// CreateSnapshot takes snapshot snap of container name (see Snapshot). A
// stopped container is read at once; a running one only with o.Freeze,
// inside which its upper directory is read and its new content staged,
// while committing the layer happens after the thaw. On any error, or a
// crash, nothing refers to what was staged, and GC removes it.
func (m *Manager) CreateSnapshot(ctx context.Context, name, snap string, o SnapshotOptions) (*Snapshot, error) {
	if err := ValidateName(snap); err != nil {
		return nil, fmt.Errorf("snapshot name: %w", err)
	}
	c, unlock, err := m.lockWithStore(name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if _, err := os.Stat(m.snapshotFile(name, snap)); err == nil {
		return nil, fmt.Errorf("%s of %s: %w", snap, name, ErrSnapshotExists)
	}
	var tree *layers.Tree
	capture := func() error {
		tree, err = upper.Snapshot(ctx, m.store.Layers, m.UpperDir(name), o.Progress)
		return err
	}
	s := &Snapshot{Name: snap, Container: *c}
	s.Container.Mount = nil
	if o.Freeze != nil {
		s.Frozen, err = o.Freeze(capture)
	} else if err = m.requireStopped(name); err == nil {
		err = capture()
	}
	if err != nil {
		if tree != nil {
			tree.Abort()
		}
		return nil, fmt.Errorf("snapshot %s: %w", name, err)
	}
	if s.Layer, err = tree.Commit(tree.Manifest); err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", name, err)
	}
	for _, e := range tree.Manifest.Entries {
		if e.Type == layers.TypeReg && e.LinkTo == "" {
			s.Files, s.Bytes = s.Files+1, s.Bytes+e.Size
		}
	}
	s.Created = time.Now().UTC()
	if err := os.MkdirAll(m.snapshotDir(name), 0o700); err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", name, err)
	}
	if err := writeJSON(m.snapshotFile(name, snap), s, durable); err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", name, err)
	}
	return s, nil
}

func (m *Manager) snapshotFile(name, snap string) string {
	return filepath.Join(m.snapshotDir(name), snap+".json")
}

// Snapshots returns container name's snapshots, oldest first.
func (m *Manager) Snapshots(name string) ([]*Snapshot, error) {
	if _, err := m.Get(name); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(m.snapshotDir(name))
	if errors.Is(err, os.ErrNotExist) {
		return []*Snapshot{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("snapshots of %s: %w", name, err)
	}
	out := []*Snapshot{}
	for _, e := range ents {
		snap, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || ValidateName(snap) != nil {
			continue // a temporary file of a write a crash cut short
		}
		s, err := m.GetSnapshot(name, snap)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b *Snapshot) int { return a.Created.Compare(b.Created) })
	return out, nil
}

// GetSnapshot returns snapshot snap of container name.
func (m *Manager) GetSnapshot(name, snap string) (*Snapshot, error) {
	if err := ValidateName(snap); err != nil {
		return nil, fmt.Errorf("snapshot name: %w", err)
	}
	b, err := os.ReadFile(m.snapshotFile(name, snap))
	if errors.Is(err, os.ErrNotExist) {
		if _, err := m.Get(name); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%s of %s: %w", snap, name, ErrSnapshotNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("snapshot %s of %s: %w", snap, name, err)
	}
	var s Snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("snapshot %s of %s: corrupt: %w", snap, name, err)
	}
	if err := s.Layer.Validate(); err != nil {
		return nil, fmt.Errorf("snapshot %s of %s: corrupt layer digest: %w", snap, name, err)
	}
	return &s, nil
}

// RestoreSnapshot puts container name back as snapshot snap has it: its
// upper directory rebuilt entry by entry from the snapshot's layer, and
// its record (template, layers, settings) as it was. The container must
// be stopped and unmounted. The new upper directory is built in the
// store's tmp/ and swapped in in one atomic exchange, then the record is
// replaced whole: a crash before the exchange leaves the container as it
// was, and GC removes the half-built directory.
func (m *Manager) RestoreSnapshot(ctx context.Context, name, snap string, p layers.Progress) error {
	c, unlock, err := m.lockWithStore(name)
	if err != nil {
		return err
	}
	defer unlock()
	if err := m.requireStopped(name); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if err := m.requireUnmounted(c); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	s, err := m.GetSnapshot(name, snap)
	if err != nil {
		return err
	}
	man, err := m.store.Layers.ReadLayer(s.Layer)
	if err != nil {
		return fmt.Errorf("restore %s to %s: %w", name, snap, err)
	}
	tmp, err := os.MkdirTemp(m.store.Layers.TmpDir(), "restore-")
	if err != nil {
		return fmt.Errorf("restore %s: %w", name, err)
	}
	defer os.RemoveAll(tmp)
	fresh := filepath.Join(tmp, "upper")
	if err := upper.Restore(ctx, m.store.Layers, man, fresh, p); err != nil {
		return fmt.Errorf("restore %s to %s: %w", name, snap, err)
	}
	if err := syncfs(fresh); err != nil {
		return fmt.Errorf("restore %s: %w", name, err)
	}
	if err := unix.Renameat2(unix.AT_FDCWD, fresh, unix.AT_FDCWD, m.UpperDir(name), unix.RENAME_EXCHANGE); err != nil {
		return fmt.Errorf("restore %s: %w", name, err)
	}
	if err := atomicfile.SyncDir(m.path(name)); err != nil {
		return fmt.Errorf("restore %s: %w", name, err)
	}
	rec := s.Container
	rec.Name, rec.Mount = name, nil
	if err := writeJSON(m.path(name, "config.json"), &rec, durable); err != nil {
		return fmt.Errorf("restore %s: %w", name, err)
	}
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("restore %s: remove old differences: %w", name, err)
	}
	return os.RemoveAll(m.path(name, "work"))
}

// RemoveSnapshot removes snapshot snap of container name. What only it
// used stays in the store until GC.
func (m *Manager) RemoveSnapshot(name, snap string) error {
	if _, err := m.GetSnapshot(name, snap); err != nil {
		return err
	}
	_, unlock, err := m.lock(name)
	if err != nil {
		return err
	}
	defer unlock()
	if err := os.Remove(m.snapshotFile(name, snap)); err != nil {
		return fmt.Errorf("remove snapshot %s of %s: %w", snap, name, err)
	}
	return atomicfile.SyncDir(m.snapshotDir(name))
}

// syncfs makes everything written on the filesystem of dir durable, as the
// store's objects are made (one syncfs rather than an fsync a file).
func syncfs(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
