package templates

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/acetate/acetate/internal/du"
	"github.com/acetate/acetate/layers"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// GCReport says what GC removed.
type GCReport struct {
	Layers     int   `json:"layersRemoved"`
	Objects    int   `json:"objectsRemoved"`
	TempFiles  int   `json:"tempFilesRemoved"`
	BytesFreed int64 `json:"bytesFreed"`
}

// Roots lists layers that something other than a template (a container)
// still uses, so GC keeps them.
type Roots func() ([]digest.Digest, error)

// GC removes the layers and objects that no template and no extra root
// reaches, and every staged file left in tmp/ by a crashed writer. It holds
// the exclusive store lock, so it waits for running publishes to finish.
func (s *Store) GC(ctx context.Context, extra ...Roots) (*GCReport, error) {
	lock, err := s.Layers.LockExclusive()
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	live, err := s.liveLayers(extra)
	if err != nil {
		return nil, err
	}
	objects := map[string]bool{}
	for d := range live {
		m, err := s.Layers.ReadLayer(d)
		if err != nil {
			return nil, fmt.Errorf("gc: a live layer is unreadable, refusing to collect (run fsck): %w", err)
		}
		for i := range m.Entries {
			if m.Entries[i].Digest != "" {
				objects[m.Entries[i].Digest.Encoded()] = true
			}
		}
	}
	r := &GCReport{}
	// One counter for all that is freed: a layer's data directory names
	// objects that the sweep of objects then removes.
	freed := du.NewCounter()
	if err := s.sweepLayers(live, r, freed); err != nil {
		return r, err
	}
	if err := s.sweepObjects(ctx, objects, r, freed); err != nil {
		return r, err
	}
	tmps, _ := os.ReadDir(s.Layers.TmpDir())
	for _, t := range tmps {
		p := filepath.Join(s.Layers.TmpDir(), t.Name())
		r.BytesFreed += freed.Tree(p).Disk
		if os.RemoveAll(p) == nil {
			r.TempFiles++
		}
	}
	return r, nil
}

// RemoveStaleStaging removes what a writer killed before it could clean
// up left staged in tmp/ (kill -9, a crash): the object files and layer
// directories named object-PID-N and layer-PID-N (layers.StagedBy) whose
// process PID no longer runs. It holds the
// shared store lock, so it runs beside other writers, whose processes
// run. Publish and registry.Pull call it. It returns the entries removed.
// (A writer in another PID namespace looks dead from here: share a store
// between PID namespaces only with gc, not this.)
func (s *Store) RemoveStaleStaging() (int, error) {
	lock, err := s.Layers.LockShared()
	if err != nil {
		return 0, err
	}
	defer lock.Unlock()
	tmps, err := os.ReadDir(s.Layers.TmpDir())
	if err != nil {
		return 0, fmt.Errorf("remove stale staging: %w", err)
	}
	n := 0
	for _, t := range tmps {
		pid, staged := layers.StagedBy(t.Name())
		if !staged {
			continue
		}
		if unix.Kill(pid, 0) != unix.ESRCH {
			continue // it runs (EPERM: as another user)
		}
		if os.RemoveAll(filepath.Join(s.Layers.TmpDir(), t.Name())) == nil {
			n++
		}
	}
	return n, nil
}

// liveLayers is every layer a template or an extra root references.
func (s *Store) liveLayers(extra []Roots) (map[digest.Digest]bool, error) {
	all, err := s.List()
	if err != nil {
		return nil, err
	}
	live := map[digest.Digest]bool{}
	for _, t := range all {
		for _, d := range t.Layers {
			live[d] = true
		}
	}
	for _, roots := range extra {
		ds, err := roots()
		if err != nil {
			return nil, fmt.Errorf("gc: list roots: %w", err)
		}
		for _, d := range ds {
			live[d] = true
		}
	}
	return live, nil
}

func (s *Store) sweepLayers(live map[digest.Digest]bool, r *GCReport, freed *du.Counter) error {
	dirs, err := os.ReadDir(s.Layers.LayersDir())
	if err != nil {
		return fmt.Errorf("gc: %w", err)
	}
	for _, d := range dirs {
		if live[digest.NewDigestFromEncoded(digest.SHA256, d.Name())] {
			continue
		}
		p := filepath.Join(s.Layers.LayersDir(), d.Name())
		bytes := freed.Tree(p).Disk
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("gc: remove layer %s: %w", d.Name(), err)
		}
		r.Layers++
		r.BytesFreed += bytes
	}
	return nil
}

func (s *Store) sweepObjects(ctx context.Context, live map[string]bool, r *GCReport, freed *du.Counter) error {
	fans, err := os.ReadDir(s.Layers.ObjectsDir())
	if err != nil {
		return fmt.Errorf("gc: %w", err)
	}
	for _, fan := range fans {
		if err := ctx.Err(); err != nil {
			return err
		}
		dir := filepath.Join(s.Layers.ObjectsDir(), fan.Name())
		objs, _ := os.ReadDir(dir)
		for _, o := range objs {
			if live[o.Name()] {
				continue
			}
			p := filepath.Join(dir, o.Name())
			bytes := freed.File(p)
			if err := os.Remove(p); err != nil {
				return fmt.Errorf("gc: remove object %s: %w", o.Name(), err)
			}
			r.Objects++
			r.BytesFreed += bytes
		}
	}
	return nil
}
