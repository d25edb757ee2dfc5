package templates

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"

	"github.com/acetate/acetate/layers"
	"github.com/opencontainers/go-digest"
)

// Problem is one inconsistency fsck found.
type Problem struct {
	// Kind is one of "corrupt-object", "missing-object", "corrupt-layer",
	// "missing-layer", "bad-ref".
	Kind     string `json:"kind"`
	Object   string `json:"object,omitempty"`
	Layer    string `json:"layer,omitempty"`
	Template string `json:"template,omitempty"`
	// Path is a path in the template's tree that uses the object.
	Path   string `json:"path,omitempty"`
	Detail string `json:"detail"`
}

func (p Problem) String() string {
	s := p.Kind
	for _, kv := range [][2]string{{"template", p.Template}, {"path", p.Path}, {"layer", p.Layer}, {"object", p.Object}} {
		if kv[1] != "" {
			s += " " + kv[0] + "=" + kv[1]
		}
	}
	return s + ": " + p.Detail
}

// FsckReport is what Fsck checked and found.
type FsckReport struct {
	Templates int       `json:"templates"`
	Layers    int       `json:"layers"`
	Objects   int       `json:"objects"`
	Problems  []Problem `json:"problems"`
}

// OK reports whether the store is consistent.
func (r *FsckReport) OK() bool { return len(r.Problems) == 0 }

// use is where an object is used: first template (or layer) and path.
type use struct{ template, layer, path string }

// Fsck re-hashes every object and every manifest and checks that every
// reference resolves, reporting each problem by object, layer, template and
// path.
func (s *Store) Fsck(ctx context.Context, p layers.Progress) (*FsckReport, error) {
	lock, err := s.Layers.LockShared()
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	r := &FsckReport{}
	uses := map[digest.Digest]use{}
	layerTemplates := map[digest.Digest]string{}
	all, err := s.listForFsck(r)
	if err != nil {
		return nil, err
	}
	r.Templates = len(all)
	for _, t := range all {
		for _, d := range t.Layers {
			if _, ok := layerTemplates[d]; !ok {
				layerTemplates[d] = t.Ref.String()
			}
		}
	}
	s.checkLayers(r, layerTemplates, uses)
	s.checkObjects(ctx, r, uses, p)
	sort.SliceStable(r.Problems, func(i, j int) bool { return r.Problems[i].Kind < r.Problems[j].Kind })
	return r, ctx.Err()
}

func (s *Store) listForFsck(r *FsckReport) ([]*Template, error) {
	all, err := s.List()
	if err == nil {
		return all, nil
	}
	r.Problems = append(r.Problems, Problem{Kind: "bad-ref", Detail: err.Error()})
	return nil, nil
}

// checkLayers verifies every manifest on disk and every layer a template
// references, and records where each object is used.
func (s *Store) checkLayers(r *FsckReport, layerTemplates map[digest.Digest]string, uses map[digest.Digest]use) {
	dirs, _ := os.ReadDir(s.Layers.LayersDir())
	seen := map[digest.Digest]bool{}
	for _, dir := range dirs {
		d := digest.NewDigestFromEncoded(digest.SHA256, dir.Name())
		seen[d] = true
		r.Layers++
		m, err := s.Layers.ReadLayer(d)
		if err != nil {
			r.Problems = append(r.Problems, Problem{Kind: "corrupt-layer", Layer: d.String(), Template: layerTemplates[d], Detail: err.Error()})
			continue
		}
		for i := range m.Entries {
			e := &m.Entries[i]
			if e.Type != layers.TypeReg {
				continue
			}
			if _, ok := uses[e.Digest]; !ok || uses[e.Digest].template == "" {
				uses[e.Digest] = use{template: layerTemplates[d], layer: d.String(), path: e.Path}
			}
		}
	}
	for d, t := range layerTemplates {
		if !seen[d] {
			r.Problems = append(r.Problems, Problem{Kind: "missing-layer", Layer: d.String(), Template: t, Detail: "the template references a layer that is not in the store"})
		}
	}
}

// checkObjects re-hashes every object on all cores and reports corrupt and
// missing ones.
func (s *Store) checkObjects(ctx context.Context, r *FsckReport, uses map[digest.Digest]use, p layers.Progress) {
	var found []digest.Digest
	fans, _ := os.ReadDir(s.Layers.ObjectsDir())
	for _, fan := range fans {
		objs, _ := os.ReadDir(filepath.Join(s.Layers.ObjectsDir(), fan.Name()))
		for _, o := range objs {
			found = append(found, digest.NewDigestFromEncoded(digest.SHA256, o.Name()))
		}
	}
	r.Objects = len(found)
	if p != nil {
		p.Total(int64(len(found)))
	}
	var mu sync.Mutex
	jobs := make(chan digest.Digest)
	var wg sync.WaitGroup
	for range runtime.NumCPU() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range jobs {
				err := s.Layers.VerifyObject(d)
				if p != nil {
					p.Advance(1)
				}
				if err == nil {
					continue
				}
				u := uses[d]
				mu.Lock()
				r.Problems = append(r.Problems, Problem{Kind: "corrupt-object", Object: d.String(), Template: u.template, Layer: u.layer, Path: u.path, Detail: err.Error()})
				mu.Unlock()
			}
		}()
	}
	have := make(map[digest.Digest]bool, len(found))
	for _, d := range found {
		have[d] = true
		if ctx.Err() == nil {
			jobs <- d
		}
	}
	close(jobs)
	wg.Wait()
	for d, u := range uses {
		if !have[d] {
			r.Problems = append(r.Problems, Problem{Kind: "missing-object", Object: d.String(), Template: u.template, Layer: u.layer, Path: u.path, Detail: "object is not in the store"})
		}
	}
}

// Check returns an error describing the report's problems, or nil.
func (r *FsckReport) Check() error {
	if r.OK() {
		return nil
	}
	errs := make([]error, len(r.Problems))
	for i, p := range r.Problems {
		errs[i] = errors.New(p.String())
	}
	return fmt.Errorf("store is inconsistent: %d problem(s):\n%w", len(r.Problems), errors.Join(errs...))
}
