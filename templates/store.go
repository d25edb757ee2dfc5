package templates

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/acetate/acetate/internal/atomicfile"
	"github.com/acetate/acetate/layers"
	"github.com/opencontainers/go-digest"
)

// ErrNotFound is wrapped by errors about a template that does not exist.
var ErrNotFound = errors.New("template not found")

// ErrExists is wrapped by errors about a name that is already a template,
// where the caller asked not to replace it.
var ErrExists = errors.New("template exists")

// ErrSelfBase is wrapped by errors about a template that would name itself
// as its base.
var ErrSelfBase = errors.New("a template cannot be its own base")

// Config is how a container from the template runs by default.
type Config struct {
	Cmd        []string `json:"cmd,omitempty"`
	Env        []string `json:"env,omitempty"`
	WorkingDir string   `json:"workingDir,omitempty"`
	User       string   `json:"user,omitempty"`
	Hostname   string   `json:"hostname,omitempty"`
}

// Template is one NAME:TAG and what it points at.
type Template struct {
	Ref
	// Layers is the stack, bottom first.
	Layers  []digest.Digest `json:"layers"`
	Config  Config          `json:"config"`
	Base    string          `json:"base,omitempty"`
	Created time.Time       `json:"created"`
}

// Store is the template store over a layer store.
type Store struct {
	Layers *layers.Store
	dir    string
}

// Open opens (creating if needed) the store rooted at root.
func Open(root string) (*Store, error) {
	ls, err := layers.Open(root)
	if err != nil {
		return nil, err
	}
	s := &Store{Layers: ls, dir: filepath.Join(ls.Root(), "templates")}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	return s, nil
}

func (s *Store) refFile(r Ref) string { return filepath.Join(s.dir, r.Name, r.Tag+".json") }

// Get returns the template r.
func (s *Store) Get(r Ref) (*Template, error) {
	b, err := os.ReadFile(s.refFile(r))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", r, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read template %s: %w", r, err)
	}
	var t Template
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("template %s: corrupt ref file %s: %w", r, s.refFile(r), err)
	}
	t.Ref = r
	return &t, nil
}

// Lookup parses s as NAME[:TAG] and returns that template.
func (s *Store) Lookup(ref string) (*Template, error) {
	r, err := ParseRef(ref)
	if err != nil {
		return nil, err
	}
	return s.Get(r)
}

// List returns every template, sorted by name and tag.
func (s *Store) List() ([]*Template, error) {
	names, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("list templates: %w", err)
	}
	var out []*Template
	for _, n := range names {
		tags, err := os.ReadDir(filepath.Join(s.dir, n.Name()))
		if err != nil {
			continue
		}
		for _, tg := range tags {
			tag, ok := strings.CutSuffix(tg.Name(), ".json")
			if !ok {
				continue
			}
			t, err := s.Get(Ref{Name: n.Name(), Tag: tag})
			if err != nil {
				return nil, err
			}
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b *Template) int { return strings.Compare(a.String(), b.String()) })
	return out, nil
}

// RequireAbsent returns an error wrapping ErrExists when r is a template.
// Commands that would replace r call it before any work unless told to
// replace; a concurrent writer of the same name may still win the race.
func (s *Store) RequireAbsent(r Ref) error {
	_, err := s.Get(r)
	switch {
	case err == nil:
		return fmt.Errorf("%s: %w", r, ErrExists)
	case errors.Is(err, ErrNotFound):
		return nil
	}
	return err
}

// BasedOn lists, sorted, the templates whose base is r.
func (s *Store) BasedOn(r Ref) ([]string, error) {
	all, err := s.List()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, t := range all {
		if t.Base == r.String() && t.Ref != r {
			out = append(out, t.Ref.String())
		}
	}
	return out, nil
}

// save writes t's ref atomically: a crash leaves the old ref or the new one.
// A template naming itself as its base is refused.
func (s *Store) save(t *Template) error {
	if t.Base == t.Ref.String() {
		return fmt.Errorf("save template %s: %w", t.Ref, ErrSelfBase)
	}
	b, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Join(s.dir, t.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save template %s: %w", t.Ref, err)
	}
	err = atomicfile.WriteFile(s.refFile(t.Ref), append(b, '\n'), true)
	if err == nil {
		err = atomicfile.SyncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("save template %s: %w", t.Ref, err)
	}
	return nil
}

// Tag makes dst point at what src points at.
func (s *Store) Tag(src, dst Ref) (*Template, error) {
	t, err := s.Get(src)
	if err != nil {
		return nil, err
	}
	t.Ref = dst
	return t, s.save(t)
}

// Remove deletes the ref r. Its layers and objects stay until GC.
func (s *Store) Remove(r Ref) error {
	if _, err := s.Get(r); err != nil {
		return err
	}
	if err := os.Remove(s.refFile(r)); err != nil {
		return fmt.Errorf("remove template %s: %w", r, err)
	}
	os.Remove(filepath.Join(s.dir, r.Name)) // only when empty
	return atomicfile.SyncDir(s.dir)
}

// Entries returns the merged tree of t, verifying every manifest.
func (s *Store) Entries(t *Template) ([]layers.Entry, error) {
	stack, err := s.manifests(t.Layers)
	if err != nil {
		return nil, fmt.Errorf("template %s: %w", t.Ref, err)
	}
	return layers.Merge(stack), nil
}

func (s *Store) manifests(ds []digest.Digest) ([]*layers.Manifest, error) {
	stack := make([]*layers.Manifest, len(ds))
	for i, d := range ds {
		m, err := s.Layers.ReadLayer(d)
		if err != nil {
			return nil, err
		}
		stack[i] = m
	}
	return stack, nil
}
