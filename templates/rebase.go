package templates

import (
	"fmt"
	"slices"
	"time"

	"github.com/acetate/acetate/layers"
	"github.com/opencontainers/go-digest"
)

// RebaseReport says what a template rebase made.
type RebaseReport struct {
	Template *Template `json:"template"`
	// Conflicts are the paths the application changed that the new base
	// also changes relative to the old one; the application's version is
	// kept.
	Conflicts []string `json:"conflicts"`
}

// Rebase makes dst from the application template src re-stacked on onto:
// onto's layers, then src's layers above its base (the application's), as
// Virtuozzo updates an application template to a patched OS template.
// Nothing is copied: a layer holds only what differs from what is below
// it, so the application's files and deletions stay the application's,
// and everything it never touched comes from onto. dst keeps src's
// configuration. src must stand on the current layers of its base, which
// tell where the application's layers start.
func (s *Store) Rebase(src, onto, dst Ref) (*RebaseReport, error) {
	lock, err := s.Layers.LockShared()
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	t, err := s.Get(src)
	if err != nil {
		return nil, err
	}
	if t.Base == "" {
		return nil, fmt.Errorf("rebase %s: it has no base: only an application template (published with --on, or committed from a container) is rebased", src)
	}
	base, err := s.Lookup(t.Base)
	if err != nil {
		return nil, fmt.Errorf("rebase %s: its base: %w", src, err)
	}
	n := len(base.Layers)
	if len(t.Layers) <= n || !slices.Equal(t.Layers[:n], base.Layers) {
		return nil, fmt.Errorf("rebase %s: it no longer stands on the layers of its base %s (replaced since?), so its application's layers are unknown", src, t.Base)
	}
	on, err := s.Get(onto)
	if err != nil {
		return nil, err
	}
	app := t.Layers[n:]
	conflicts, err := s.changedBelow(app, base, on)
	if err != nil {
		return nil, fmt.Errorf("rebase %s: %w", src, err)
	}
	nt := &Template{Ref: dst, Layers: append(slices.Clone(on.Layers), app...), Config: t.Config,
		Base: on.Ref.String(), Created: time.Now().UTC()}
	if err := s.save(nt); err != nil {
		return nil, err
	}
	return &RebaseReport{Template: nt, Conflicts: conflicts}, nil
}

// changedBelow lists, sorted, the paths the layers app hold that differ
// between the merged trees of from and to. Directories are left out: what
// they hold is listed by its own paths.
func (s *Store) changedBelow(app []digest.Digest, from, to *Template) ([]string, error) {
	old, err := s.Entries(from)
	if err != nil {
		return nil, err
	}
	cur, err := s.Entries(to)
	if err != nil {
		return nil, err
	}
	oldIdx, curIdx := byPath(old), byPath(cur)
	out := []string{}
	for _, d := range app {
		m, err := s.Layers.ReadLayer(d)
		if err != nil {
			return nil, err
		}
		for i := range m.Entries {
			if m.Entries[i].Type == layers.TypeDir {
				continue
			}
			p := m.Entries[i].Path
			o, c := oldIdx[p], curIdx[p]
			if (o == nil) != (c == nil) || o != nil && !layers.SameContent(o, c) {
				out = append(out, p)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// byPath indexes entries by path.
func byPath(entries []layers.Entry) map[string]*layers.Entry {
	idx := make(map[string]*layers.Entry, len(entries))
	for i := range entries {
		idx[entries[i].Path] = &entries[i]
	}
	return idx
}
