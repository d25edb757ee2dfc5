package container

import (
	"slices"

	"github.com/acetate/acetate/internal/du"

	"github.com/acetate/acetate/templates"
)

// Usage is what the containers of a store cost on disk beyond their
// templates, against what they would take as full copies.
type Usage struct {
	Containers int `json:"containers"`
	// LogicalBytes is what full copies of every container's tree (its
	// template's tree, changed as the container changed it) would hold.
	LogicalBytes int64 `json:"logicalBytes"`
	// DiskBytes is the disk really used by the containers' directories.
	DiskBytes int64 `json:"diskBytes"`
}

// DiskUsage measures every container. A container's logical size is
// approximated as its template's plus the apparent size of its upper dir.
func (m *Manager) DiskUsage() (*Usage, error) {
	cs, err := m.List()
	if err != nil {
		return nil, err
	}
	u := &Usage{Containers: len(cs)}
	type stackSize struct {
		stack []string
		bytes int64
	}
	var sizes []stackSize
	for _, c := range cs {
		key := make([]string, len(c.Layers))
		for i, d := range c.Layers {
			key[i] = d.String()
		}
		k := slices.IndexFunc(sizes, func(s stackSize) bool { return slices.Equal(s.stack, key) })
		if k < 0 {
			n, err := m.store.LogicalBytes(c.Layers)
			if err != nil {
				return nil, err
			}
			sizes = append(sizes, stackSize{key, n})
			k = len(sizes) - 1
		}
		u.LogicalBytes += sizes[k].bytes + du.Tree(m.UpperDir(c.Name)).Apparent
		u.DiskBytes += du.Tree(m.path(c.Name)).Disk
	}
	return u, nil
}

// Store is the template store the containers use.
func (m *Manager) Store() *templates.Store { return m.store }
