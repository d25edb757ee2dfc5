package templates

import (
	"fmt"
	"time"

	"github.com/acetate/acetate/layers"
	"github.com/opencontainers/go-digest"
)

// SaveLayers points r at a template made of layers (bottom first), which
// must already be in the store with all their objects, and config. It checks
// that before writing the ref, so a ref never names a partial stack.
//
// It is the last step of an ingest (import, pull) that wrote the layers
// itself: the caller takes the store's shared lock (s.Layers.LockShared)
// before writing the first object and holds it until SaveLayers returns, so
// that GC cannot remove what the ref is about to reference.
func (s *Store) SaveLayers(r Ref, stack []digest.Digest, config Config, created time.Time) (*Template, error) {
	if len(stack) == 0 {
		return nil, fmt.Errorf("save template %s: no layers", r)
	}
	for _, d := range stack {
		if err := s.checkLayer(d); err != nil {
			return nil, fmt.Errorf("save template %s: %w", r, err)
		}
	}
	t := &Template{Ref: r, Layers: append([]digest.Digest(nil), stack...), Config: config, Created: created.UTC()}
	if err := s.save(t); err != nil {
		return nil, err
	}
	return t, nil
}

// checkLayer verifies that layer d is stored and every object it names is.
func (s *Store) checkLayer(d digest.Digest) error {
	m, err := s.Layers.ReadLayer(d)
	if err != nil {
		return err
	}
	for i := range m.Entries {
		e := &m.Entries[i]
		if e.Type == layers.TypeReg && !s.Layers.HasObject(e.Digest) {
			return fmt.Errorf("layer %s: object %s of %s is not in the store", d, e.Digest, e.Path)
		}
	}
	return nil
}
