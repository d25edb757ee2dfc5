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
	s, err := m.capture(ctx, c, o)
	if err != nil {
		return nil, err
	}
	s.Name = snap
	if err := m.saveSnapshots(m.snapshotDir(name), s); err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", name, err)
	}
	return s, nil
}

// Capture reads container name's differences into a layer of the store as
// CreateSnapshot does, and returns them as a Snapshot without a name that
// nothing refers to: the caller holds the store's shared lock
// (Layers.LockShared) from before the call until it no longer needs the
// layer, or GC may remove it. Export uses it.
func (m *Manager) Capture(ctx context.Context, name string, o SnapshotOptions) (*Snapshot, error) {
	c, unlock, err := m.lock(name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	return m.capture(ctx, c, o)
}

// capture reads c's upper directory into a layer (see CreateSnapshot).
// The caller holds c's lock and the store's shared lock.
func (m *Manager) capture(ctx context.Context, c *Container, o SnapshotOptions) (*Snapshot, error) {
	release, err := holdDisk(m.path(c.Name))
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", c.Name, err)
	}
	defer release()
	var tree *layers.Tree
	capture := func() (err error) {
		tree, err = upper.Snapshot(ctx, m.store.Layers, m.UpperDir(c.Name), o.Progress)
		return err
	}
	s := &Snapshot{Container: *c}
	s.Container.Mount = nil
	if o.Freeze != nil {
		s.Frozen, err = o.Freeze(capture)
	} else if err = m.requireStopped(c.Name); err == nil {
		err = capture()
	}
	if err != nil {
		if tree != nil {
			tree.Abort()
		}
		return nil, fmt.Errorf("snapshot %s: %w", c.Name, err)
	}
	if s.Layer, err = tree.Commit(tree.Manifest); err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", c.Name, err)
	}
	for _, e := range tree.Manifest.Entries {
		if e.Type == layers.TypeReg && e.LinkTo == "" {
			s.Files, s.Bytes = s.Files+1, s.Bytes+e.Size
		}
	}
	s.Created = time.Now().UTC()
	return s, nil
}

// saveSnapshots writes the records of snaps into dir, durably.
func (m *Manager) saveSnapshots(dir string, snaps ...*Snapshot) error {
	if len(snaps) == 0 {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, s := range snaps {
		if err := ValidateName(s.Name); err != nil {
			return fmt.Errorf("snapshot name: %w", err)
		}
		if err := writeJSON(filepath.Join(dir, s.Name+".json"), s, durable); err != nil {
			return err
		}
	}
	return nil
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
// be stopped and unmounted (see Replace).
func (m *Manager) RestoreSnapshot(ctx context.Context, name, snap string, p layers.Progress) error {
	s, err := m.GetSnapshot(name, snap)
	if err != nil {
		return err
	}
	rec := s.Container
	rec.Name = name
	if err := m.Replace(ctx, &rec, s.Layer, nil, p); err != nil {
		return fmt.Errorf("restore %s to %s: %w", name, snap, err)
	}
	return nil
}

// Replace gives the existing container rec.Name the record rec (but its
// name) and the differences of layer state (a Snapshot's Layer), and adds
// snaps to its snapshots, as an incremental import does. The container
// must be stopped and unmounted. The new upper directory is built in the
// store's tmp/ and swapped in in one atomic exchange, then the record is
// replaced whole: a crash before the exchange leaves the container's
// differences as they were (with snaps added), and GC removes the
// half-built directory.
func (m *Manager) Replace(ctx context.Context, rec *Container, state digest.Digest, snaps []*Snapshot, p layers.Progress) error {
	name := rec.Name
	c, unlock, err := m.lockWithStore(name)
	if err != nil {
		return err
	}
	defer unlock()
	if err := m.requireStopped(name); err != nil {
		return err
	}
	if err := m.requireUnmounted(c); err != nil {
		return err
	}
	r := *rec
	r.Mount = nil
	in := &restoreIntent{Record: &r, Snapshots: snaps}
	intent := m.path(name, restoreIntentFile)
	err = m.replaceUpper(ctx, name, state, p, func(upper uint64) error {
		in.Upper = upper
		return writeJSON(intent, in, durable)
	})
	if err != nil {
		os.Remove(intent) // the differences are as they were
		return err
	}
	return m.completeRestore(name, in)
}

// restoreIntentFile, in a container's directory, is the restoreIntent of a
// Replace from before its upper directory is exchanged until its record is
// written: a crash between the two is finished at the container's next
// lock (see finishRestore), never leaving the new differences with the old
// record.
const restoreIntentFile = "restore.json"

// restoreIntent is what a Replace is about to put in place: the record
// and snapshots that go with the upper directory it built, whose inode
// number Upper is (the old one still exists while it is built, so a crash
// leaves in place either the old directory or the one of that number).
type restoreIntent struct {
	Upper     uint64      `json:"upper"`
	Record    *Container  `json:"record"`
	Snapshots []*Snapshot `json:"snapshots,omitempty"`
}

// completeRestore writes what goes with the differences Replace swapped
// in: the snapshots, the disk the record's quota asks for, the record;
// then it drops the mark and the intent.
func (m *Manager) completeRestore(name string, in *restoreIntent) error {
	if err := m.saveSnapshots(m.snapshotDir(name), in.Snapshots...); err != nil {
		return err
	}
	// The differences may have been taken under another disk quota.
	if err := settleDisk(m.path(name), in.Record.Settings); err != nil {
		return err
	}
	if err := writeJSON(m.path(name, "config.json"), in.Record, durable); err != nil {
		return err
	}
	return os.Remove(m.path(name, restoreIntentFile))
}

// finishRestore finishes a Replace of container name that a crash cut
// short: when the upper directory in place is the one the intent names,
// its record and snapshots are written; else the exchange never happened
// and the intent goes. The caller holds the container's lock.
func (m *Manager) finishRestore(name string) error {
	var in restoreIntent
	data, err := os.ReadFile(m.path(name, restoreIntentFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err == nil {
		err = json.Unmarshal(data, &in)
	}
	if err != nil || in.Record == nil {
		return fmt.Errorf("container %s: unreadable restore record: %v", name, err)
	}
	upper, err := m.upperInode(name)
	if err != nil {
		return err
	}
	if upper != in.Upper {
		return os.Remove(m.path(name, restoreIntentFile))
	}
	in.Record.Name = name
	return m.completeRestore(name, &in)
}

// upperInode returns the inode number of container name's upper
// directory, mounting its disk image for the while.
func (m *Manager) upperInode(name string) (uint64, error) {
	release, err := holdDisk(m.path(name))
	if err != nil {
		return 0, err
	}
	defer release()
	var st unix.Stat_t
	if err := unix.Lstat(m.UpperDir(name), &st); err != nil {
		return 0, fmt.Errorf("container %s: %w", name, err)
	}
	return st.Ino, nil
}

// replaceUpper rebuilds container name's upper directory from layer state
// beside it (in the store's tmp/, or in its disk image, as Reset does),
// calls built with its inode number, and exchanges it in.
func (m *Manager) replaceUpper(ctx context.Context, name string, state digest.Digest, p layers.Progress, built func(upper uint64) error) error {
	dir := m.path(name)
	release, err := holdDisk(dir)
	if err != nil {
		return err
	}
	defer release()
	staging := m.store.Layers.TmpDir()
	if hasImage(dir) {
		staging = filepath.Join(dir, diskMount)
		if err := removeResetStaging(staging); err != nil {
			return err
		}
	}
	// Named as Reset names its staging, which it removes from an image.
	tmp, err := os.MkdirTemp(staging, "reset-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	fresh := filepath.Join(tmp, "upper")
	if err := m.restoreUpper(ctx, state, fresh, p); err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Lstat(fresh, &st); err != nil {
		return err
	}
	if err := built(st.Ino); err != nil {
		return err
	}
	if err := unix.Renameat2(unix.AT_FDCWD, fresh, unix.AT_FDCWD, m.UpperDir(name), unix.RENAME_EXCHANGE); err != nil {
		return err
	}
	if err := atomicfile.SyncDir(filepath.Dir(m.UpperDir(name))); err != nil {
		return err
	}
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("remove old differences: %w", err)
	}
	if err := removeWork(dir); err != nil {
		return err
	}
	return release()
}

// Adopt creates container rec.Name from the record rec, the differences
// of layer state (a Snapshot's Layer) and the snapshots snaps, as import
// does: all of it is made in the store's tmp/ and renamed into place, so
// the container exists whole or not at all. It fails with ErrExists when
// the name is taken. The layers must be in the store; the caller holds the
// store's shared lock from before it wrote them.
func (m *Manager) Adopt(ctx context.Context, rec *Container, state digest.Digest, snaps []*Snapshot, p layers.Progress) error {
	if err := ValidateName(rec.Name); err != nil {
		return err
	}
	c := *rec
	c.Mount = nil
	return m.install(&c, func(dir string) error {
		if err := m.restoreUpper(ctx, state, dir, p); err != nil {
			return err
		}
		// The container directory being made holds dir.
		return m.saveSnapshots(filepath.Join(filepath.Dir(dir), "snapshots"), snaps...)
	})
}

// restoreUpper writes the upper directory that layer state holds into the
// new directory dst, durably.
func (m *Manager) restoreUpper(ctx context.Context, state digest.Digest, dst string, p layers.Progress) error {
	man, err := m.store.Layers.ReadLayer(state)
	if err != nil {
		return err
	}
	if err := upper.Restore(ctx, m.store.Layers, man, dst, p); err != nil {
		return err
	}
	return syncfs(dst)
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
