package upper

import (
	"context"

	"github.com/acetate/acetate/layers"
)

// Kind is how a path differs from the template, as docker diff prints it.
type Kind string

// The kinds of change.
const (
	Added   Kind = "A"
	Changed Kind = "C"
	Deleted Kind = "D"
)

// Change is one path that differs between a container and its template.
type Change struct {
	Kind Kind   `json:"kind"`
	Path string `json:"path"`
	// Type is the entry's type in the container (in the template for a
	// deletion).
	Type string `json:"type"`
	// Size is the content length of a regular file in the container (in
	// the template for a deletion).
	Size int64 `json:"size"`
}

// Changes lists what the upper directory dir adds, changes and deletes
// relative to base, the merged entries of the template below it, sorted by
// path. A deleted directory is listed once, not with its content. A regular
// file the upper directory holds in full counts as changed, as copy-up
// only happens on a write.
func Changes(dir string, base []layers.Entry) ([]Change, error) {
	view, err := View(dir, base)
	if err != nil {
		return nil, err
	}
	return compare(base, view), nil
}

// View returns the merged tree the union of base and the upper directory
// dir shows. Regular files held in full by the upper directory have no
// digest.
func View(dir string, base []layers.Entry) ([]layers.Entry, error) {
	m, err := Read(dir, base)
	if err != nil {
		return nil, err
	}
	return layers.Merge([]*layers.Manifest{{Entries: base}, m}), nil
}

// compare lists the differences between two sorted merged trees.
func compare(before, after []layers.Entry) []Change {
	var out []Change
	deleted := "" // a deleted directory whose content is not listed
	i, j := 0, 0
	for i < len(before) || j < len(after) {
		c := 1
		switch {
		case i >= len(before):
		case j >= len(after):
			c = -1
		default:
			c = layers.ComparePaths(before[i].Path, after[j].Path)
		}
		switch {
		case c < 0:
			b := &before[i]
			if deleted == "" || !layers.IsUnder(b.Path, deleted) {
				out = append(out, Change{Kind: Deleted, Path: b.Path, Type: b.Type.String(), Size: b.Size})
				deleted = b.Path
			}
			i++
		case c > 0:
			out = append(out, change(Added, &after[j]))
			j++
		default:
			if !layers.SameContent(&before[i], &after[j]) {
				out = append(out, change(Changed, &after[j]))
			}
			i++
			j++
		}
	}
	return out
}

func change(k Kind, e *layers.Entry) Change {
	return Change{Kind: k, Path: e.Path, Type: e.Type.String(), Size: e.Size}
}

// Layer reads the upper directory dir as Read does and stages the content
// of its files in the store s, deduplicated against it, each read from the
// descriptor of the file the walk looked at (see walk). The caller holds
// the store's shared lock until the tree is committed or aborted.
func Layer(ctx context.Context, s *layers.Store, dir string, base []layers.Entry, p layers.Progress) (*layers.Tree, error) {
	return stageTree(ctx, s, dir, &reader{base: base}, p)
}

// stageTree walks the upper directory dir with r, staging the content of
// its files in s, and returns the tree of what r read.
func stageTree(ctx context.Context, s *layers.Store, dir string, r *reader, p layers.Progress) (*layers.Tree, error) {
	t := s.NewTree(nil)
	st := newStager(ctx, t, p)
	r.stage = st.stage
	r, err := r.read(dir)
	if werr := st.wait(); err == nil {
		err = werr
	}
	if err != nil {
		t.Abort()
		return nil, err
	}
	st.fill(r.m)
	t.Manifest = r.m
	return t, nil
}
