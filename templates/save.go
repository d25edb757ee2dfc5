package templates

import (
	"fmt"
	"os"
	"path/filepath"
)

// Save points t.Ref at t's layers and config, atomically, after checking
// that every layer is in the store. It is how a template is made from
// layers that are already stored, as a container commit does; the caller
// holds the store's shared lock from writing the layers until Save returns.
func (s *Store) Save(t *Template) error {
	if len(t.Layers) == 0 {
		return fmt.Errorf("save template %s: no layers", t.Ref)
	}
	for _, d := range t.Layers {
		if _, err := os.Stat(filepath.Join(s.Layers.LayerDir(d), "manifest")); err != nil {
			return fmt.Errorf("save template %s: layer %s: %w", t.Ref, d, err)
		}
	}
	return s.save(t)
}
