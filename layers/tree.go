package layers

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"
)

// Progress receives how far a long operation has come, in bytes. An
// implementation must be safe for concurrent use. Nothing in this package
// prints; the CLI renders progress.
type Progress interface {
	// Total announces the number of bytes the operation will process.
	Total(bytes int64)
	// Advance reports bytes processed since the last call.
	Advance(bytes int64)
}

type noProgress struct{}

func (noProgress) Total(int64)   {}
func (noProgress) Advance(int64) {}

func orNoProgress(p Progress) Progress {
	if p == nil {
		return noProgress{}
	}
	return p
}

// Tree is a tree read from a source whose new objects are staged but not yet
// part of the store. Commit writes a layer; Abort drops the staged objects.
// The caller holds the store's shared lock from reading the tree until the
// layer is referenced.
type Tree struct {
	Manifest *Manifest
	// Implied lists, sorted, the directories of a tree read by ReadTar that
	// the stream never named but whose descendants it holds: they carry
	// made-up metadata (root, 0755, mtime 0). A layer stacked on others
	// should take their metadata from the layers below instead.
	Implied []string
	st      *staging
}

// Abort removes the staged objects.
func (t *Tree) Abort() { t.st.abort() }

// Commit stores the staged objects and then the layer m (usually
// t.Manifest, or a diff of it against a base), and returns the layer digest.
func (t *Tree) Commit(m *Manifest) (digest.Digest, error) {
	if err := t.CommitObjects(); err != nil {
		return "", err
	}
	return t.st.s.WriteLayer(m)
}

// CommitObjects stores the staged objects without writing a layer, for a
// caller that writes the layers referencing them later (a pull fetching
// objects in batches). Until a layer references them, GC may remove them,
// so the caller holds the store's shared lock throughout.
func (t *Tree) CommitObjects() error {
	if err := t.st.commit(); err != nil {
		t.st.abort()
		return err
	}
	return nil
}

// WriteLayer stores manifest m, whose objects must already be in the store,
// and returns its digest. Writing a layer that exists is a no-op.
func (s *Store) WriteLayer(m *Manifest) (digest.Digest, error) {
	raw := m.Encode()
	d := digest.FromBytes(raw)
	dir := s.LayerDir(d)
	if _, err := os.Stat(filepath.Join(dir, "manifest")); err == nil {
		return d, nil
	}
	tmp := s.stagedName("layer")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return "", fmt.Errorf("write layer: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := os.WriteFile(filepath.Join(tmp, "manifest"), Compress(raw), 0o444); err != nil {
		return "", fmt.Errorf("write layer %s: %w", d, err)
	}
	if err := s.syncfs(); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil && !os.IsExist(err) && !isNotEmpty(err) {
		return "", fmt.Errorf("write layer %s: %w", d, err)
	}
	return d, s.syncfs()
}

// ReadLayer loads and verifies the manifest of layer d.
func (s *Store) ReadLayer(d digest.Digest) (*Manifest, error) {
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("layer %q: %w", d, err)
	}
	z, err := os.ReadFile(filepath.Join(s.LayerDir(d), "manifest"))
	if err != nil {
		return nil, fmt.Errorf("layer %s: %w", d, err)
	}
	raw, err := Decompress(z)
	if err != nil {
		return nil, fmt.Errorf("layer %s: manifest does not decompress: %v: %w", d, err, ErrCorrupt)
	}
	if got := digest.FromBytes(raw); got != d {
		return nil, fmt.Errorf("layer %s: manifest hashes to %s: %w", d, got, ErrCorrupt)
	}
	m, err := DecodeManifest(raw)
	if err != nil {
		return nil, fmt.Errorf("layer %s: %v: %w", d, err, ErrCorrupt)
	}
	return m, nil
}

// finishHardlinks sorts entries, and gives every member of a hardlink group
// (entries sharing a non-zero group key) the group's content, and all but the
// leader (the first member in manifest order) LinkTo = the leader's path.
// Content is read once per group, so only one member carries a digest before.
func finishHardlinks(m *Manifest) {
	m.Sort()
	content := map[uint64]*Entry{}
	for i := range m.Entries {
		if e := &m.Entries[i]; e.group != 0 && e.Digest != "" {
			content[e.group] = e
		}
	}
	leaders := map[uint64]string{}
	for i := range m.Entries {
		e := &m.Entries[i]
		if e.group == 0 {
			continue
		}
		e.Digest, e.Size = content[e.group].Digest, content[e.group].Size
		if l, ok := leaders[e.group]; ok {
			e.LinkTo = l
		} else {
			leaders[e.group] = e.Path
		}
	}
}
