package container

import (
	"fmt"

	"github.com/acetate/acetate/fs/upper"
	"github.com/acetate/acetate/layers"
)

// RebaseReport says what a rebase did.
type RebaseReport struct {
	From string `json:"from"`
	To   string `json:"to"`
	// Conflicts are paths the container changed that the new template also
	// changes relative to the old one; the container's version is kept.
	Conflicts []string `json:"conflicts"`
}

// Rebase moves container name, which must not be mounted, onto template
// (NAME[:TAG]), keeping its differences: files it never touched now come
// from the new template, files it changed stay its own. A file whose
// metadata alone it changed keeps the content it had, copied into its
// upper directory when the new template's content differs. A crash leaves
// the container on the old template or the new one.
func (m *Manager) Rebase(name, template string) (*RebaseReport, error) {
	c, unlock, err := m.lockWithStore(name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := m.requireStopped(name); err != nil {
		return nil, fmt.Errorf("rebase: %w", err)
	}
	if err := m.requireUnmounted(c); err != nil {
		return nil, fmt.Errorf("rebase: %w", err)
	}
	release, err := holdDisk(m.path(name))
	if err != nil {
		return nil, fmt.Errorf("rebase %s: %w", name, err)
	}
	defer release()
	t, err := m.store.Lookup(template)
	if err != nil {
		return nil, fmt.Errorf("rebase %s: %w", name, err)
	}
	oldBase, err := m.entries(c.Layers)
	if err != nil {
		return nil, fmt.Errorf("rebase %s: %w", name, err)
	}
	newBase, err := m.entries(t.Layers)
	if err != nil {
		return nil, fmt.Errorf("rebase %s: %w", name, err)
	}
	r := &RebaseReport{From: c.Template, To: t.Ref.String(), Conflicts: []string{}}
	if r.Conflicts, err = m.conflicts(name, oldBase, newBase); err != nil {
		return nil, fmt.Errorf("rebase %s: %w", name, err)
	}
	if err := m.keepMetacopyData(name, oldBase, newBase); err != nil {
		return nil, fmt.Errorf("rebase %s: %w", name, err)
	}
	// The data copied in changes the differences' size.
	m.keepDiffUsage(name, true)
	if _, err := m.templateRoot(t.Layers); err != nil { // build the metadata trees now
		return nil, fmt.Errorf("rebase %s: %w", name, err)
	}
	c.Template, c.Layers, c.Config, c.Mount = t.Ref.String(), t.Layers, t.Config, nil
	if err := writeJSON(m.path(name, "config.json"), c, durable); err != nil {
		return nil, fmt.Errorf("rebase %s: %w", name, err)
	}
	return r, nil
}

// conflicts lists the paths the container changed that the new template
// changed too, to something else than the container has.
func (m *Manager) conflicts(name string, oldBase, newBase []layers.Entry) ([]string, error) {
	dir := m.UpperDir(name)
	changes, err := upper.Changes(dir, oldBase)
	if err != nil {
		return nil, err
	}
	view, err := upper.View(dir, oldBase)
	if err != nil {
		return nil, err
	}
	oldIdx, newIdx, mine := index(oldBase), index(newBase), index(view)
	out := []string{}
	for _, ch := range changes {
		if !sameEntry(oldIdx[ch.Path], newIdx[ch.Path]) && !sameEntry(withDigest(dir, mine[ch.Path]), newIdx[ch.Path]) {
			out = append(out, ch.Path)
		}
	}
	return out, nil
}

// sameEntry reports whether a and b (nil when absent) are the same file.
func sameEntry(a, b *layers.Entry) bool {
	if a == nil || b == nil {
		return a == b
	}
	return layers.SameContent(a, b)
}

// withDigest returns e with the digest of its content when the upper
// directory holds it in full (the view has no digest for it yet).
func withDigest(dir string, e *layers.Entry) *layers.Entry {
	if e == nil || e.Type != layers.TypeReg || e.Digest != "" {
		return e
	}
	d, err := upper.Digest(dir, e.Path)
	if err != nil {
		return e
	}
	c := *e
	c.Digest = d
	return &c
}

// keepMetacopyData copies into the upper directory the data of every
// metacopy file whose data the new template would change.
func (m *Manager) keepMetacopyData(name string, oldBase, newBase []layers.Entry) error {
	metas, err := upper.Metacopies(m.UpperDir(name), oldBase)
	if err != nil {
		return err
	}
	oldIdx, newIdx := index(oldBase), index(newBase)
	for p, src := range metas {
		o := oldIdx[src]
		if n, ok := newIdx[src]; ok && n.Type == layers.TypeReg && n.Digest == o.Digest {
			continue
		}
		if err := upper.Materialize(m.store.Layers, m.UpperDir(name), p, o); err != nil {
			return err
		}
	}
	return nil
}

func index(entries []layers.Entry) map[string]*layers.Entry {
	idx := make(map[string]*layers.Entry, len(entries))
	for i := range entries {
		idx[entries[i].Path] = &entries[i]
	}
	return idx
}
