package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"

	"github.com/acetate/acetate/layers"
	"github.com/acetate/acetate/templates"
	"github.com/acetate/acetate/templates/oci"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"
)

// Pull makes template r from src (REGISTRY/REPO:TAG or @DIGEST). When the
// image carries ConfigAnnotation and the registry holds that artifact, made
// for this very image, only the objects the store lacks are fetched;
// otherwise the image layers are imported. The ref is written last: on
// error there is no new template, and objects already fetched and verified
// stay in the store for the next try. It first removes what pulls and
// publishes killed before they could clean up left staged in tmp/
// (templates.Store.RemoveStaleStaging), so a pull resumed after kill -9
// leaves nothing there.
func Pull(ctx context.Context, st *templates.Store, src string, r templates.Ref, o Options) (*templates.Template, error) {
	ref, err := ParseReference(src, o)
	if err != nil {
		return nil, err
	}
	if _, err := st.RemoveStaleStaging(); err != nil {
		return nil, err
	}
	p := &puller{st: st, repo: ref.Context(), opts: o.remoteOptions(ctx), progress: o.Progress, what: "pull " + src}
	if p.progress == nil {
		p.progress = noProgress{}
	}
	img, err := remote.Image(ref, append(p.opts, remote.WithPlatform(v1.Platform{OS: "linux", Architecture: runtime.GOARCH}))...)
	if err != nil {
		return nil, explain(p.what, err)
	}
	man, err := img.Manifest()
	if err != nil {
		return nil, explain(p.what, err)
	}
	t, err := p.image(ctx, r, img, man)
	if err != nil {
		return nil, err
	}
	if err := restoreBase(st, t, man.Annotations[BaseAnnotation]); err != nil {
		return nil, fmt.Errorf("%s: %w", p.what, err)
	}
	return t, nil
}

// image makes template r from img, whose manifest is man: through its
// artifact when it has one made for it, else from its layers.
func (p *puller) image(ctx context.Context, r templates.Ref, img v1.Image, man *v1.Manifest) (*templates.Template, error) {
	if cd := man.Annotations[ConfigAnnotation]; cd != "" {
		cfg, err := p.config(digest.Digest(cd))
		if err != nil {
			return nil, err
		}
		if cfg != nil && cfg.describes(man) {
			return p.pull(ctx, r, cfg)
		}
	}
	t, err := oci.Import(ctx, p.st, r, img, p.progress)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.what, err)
	}
	return t, nil
}

// restoreBase names base (the image's BaseAnnotation) as t's base when the
// store has that template and it is what t stands on: its layers are the
// bottom of t's. A base this store lacks, or has in another version, is not
// named: Base always names a local template, which template rm protects.
// An annotation that is no NAME:TAG is ignored like a missing one.
func restoreBase(st *templates.Store, t *templates.Template, base string) error {
	r, err := templates.ParseRef(base)
	if base == "" || err != nil || r == t.Ref {
		return nil
	}
	bt, err := st.Get(r)
	if errors.Is(err, templates.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	n := len(bt.Layers)
	if n >= len(t.Layers) || !slices.Equal(bt.Layers, t.Layers[:n]) {
		return nil
	}
	t.Base = r.String()
	return st.Save(t)
}

// puller fetches one template's artifact blobs from one repository.
type puller struct {
	st       *templates.Store
	repo     name.Repository
	opts     []remote.Option
	progress layers.Progress
	what     string
	// local indexes the manifest chunks of the store's layers, once needed.
	local map[digest.Digest][]byte
}

// config fetches the artifact config d, or returns nil when the registry
// does not have it (the artifact was deleted).
func (p *puller) config(d digest.Digest) (*artifactConfig, error) {
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("%s: image annotation %s: %w", p.what, ConfigAnnotation, err)
	}
	raw, err := p.blob(d, oci.SizeUnknown, 1<<24)
	if errors.Is(err, ErrUnknown) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var cfg artifactConfig
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("%s: artifact config: %w", p.what, err)
	}
	if len(cfg.Layers) == 0 {
		return nil, fmt.Errorf("%s: artifact config lists no layers", p.what)
	}
	for _, l := range cfg.Layers {
		if l.Digest.Validate() != nil || l.Blob.Validate() != nil {
			return nil, fmt.Errorf("%s: artifact config: bad layer digest %q or blob %q", p.what, l.Digest, l.Blob)
		}
	}
	return &cfg, nil
}

// open starts reading blob d; the client verifies its digest as it streams.
func (p *puller) open(d digest.Digest) (io.ReadCloser, error) {
	l, err := remote.Layer(p.repo.Digest(d.String()), p.opts...)
	if err != nil {
		return nil, explain(p.what+": blob "+d.String(), err)
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, explain(p.what+": blob "+d.String(), err)
	}
	return rc, nil
}

// verified reads blob d, verified against its digest and its size
// (oci.SizeUnknown when none was declared), with its bytes as progress.
func (p *puller) verified(rc io.Reader, d digest.Digest, size int64) io.Reader {
	return oci.Verify(&countingReader{r: rc, p: p.progress}, hash(d), size)
}

// blob reads a whole small blob of the declared size, verified, refusing
// more than limit bytes.
func (p *puller) blob(d digest.Digest, size, limit int64) ([]byte, error) {
	if size > limit {
		return nil, fmt.Errorf("%s: blob %s declares %d bytes, more than the %d allowed", p.what, d, size, limit)
	}
	rc, err := p.open(d)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(p.verified(rc, d, size), limit+1))
	if err == nil && int64(len(b)) > limit {
		err = fmt.Errorf("larger than %d bytes", limit)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: blob %s: %w", p.what, d, err)
	}
	return b, nil
}

// pull fetches what the store lacks of the template cfg describes and
// points r at it.
func (p *puller) pull(ctx context.Context, r templates.Ref, cfg *artifactConfig) (*templates.Template, error) {
	lock, err := p.st.Layers.LockShared()
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	ds, err := p.layers(ctx, cfg)
	if err != nil {
		return nil, err
	}
	t := &templates.Template{Ref: r, Layers: ds, Config: cfg.Config, Created: cfg.Created}
	if err := p.st.Save(t); err != nil {
		return nil, err
	}
	return t, nil
}

// layers fetches what the store lacks of the layers cfg lists, writes
// them, and returns their digests. The caller holds the store's shared
// lock until something refers to them.
func (p *puller) layers(ctx context.Context, cfg *artifactConfig) ([]digest.Digest, error) {
	stack := make([]*layers.Manifest, len(cfg.Layers))
	var todo []pack
	planned := map[digest.Digest]bool{}
	for i, al := range cfg.Layers {
		m, err := p.st.Layers.ReadLayer(al.Digest)
		if err == nil && !p.lacksAny(m, planned) {
			stack[i] = m
			continue
		}
		m, packs, err := p.layerBlob(al)
		if err != nil {
			return nil, err
		}
		f, err := p.plan(al, m, packs, planned)
		if err != nil {
			return nil, err
		}
		stack[i], todo = m, append(todo, f...)
	}
	if err := p.fetch(ctx, todo); err != nil {
		return nil, err
	}
	ds := make([]digest.Digest, len(stack))
	for i, m := range stack {
		var err error
		if ds[i], err = p.writeLayer(m, cfg.Layers[i].Digest); err != nil {
			return nil, err
		}
	}
	return ds, nil
}

// lacksAny reports whether the store lacks an object of m that is not
// already planned.
func (p *puller) lacksAny(m *layers.Manifest, planned map[digest.Digest]bool) bool {
	for i := range m.Entries {
		e := &m.Entries[i]
		if e.Type == layers.TypeReg && !planned[e.Digest] && !p.st.Layers.HasObject(e.Digest) {
			return true
		}
	}
	return false
}

// layerBlob fetches the description of layer al: its manifest, from the
// chunks the store's layers already have and those it fetches, and its packs.
func (p *puller) layerBlob(al artifactLayer) (*layers.Manifest, []pack, error) {
	b, err := p.blob(al.Blob, oci.SizeUnknown, 1<<24)
	if err != nil {
		return nil, nil, err
	}
	chunks, packs, err := decodeLayerBlob(b)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: layer %s: %w", p.what, al.Digest, err)
	}
	if p.local == nil {
		p.local = localChunks(p.st.Layers)
	}
	runs := make([][]byte, len(chunks))
	for i, c := range chunks {
		if runs[i] = p.local[c.digest]; runs[i] != nil {
			continue
		}
		cb, err := p.blob(c.digest, c.size, 1<<28)
		if err != nil {
			return nil, nil, err
		}
		if runs[i], err = decodeChunk(cb); err != nil {
			return nil, nil, fmt.Errorf("%s: layer %s: %w", p.what, al.Digest, err)
		}
	}
	m, err := assemble(runs, al.Entries, al.Digest)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", p.what, err)
	}
	return m, packs, nil
}

// writeLayer stores manifest m once every object it names is in the store,
// and checks that it is layer want.
func (p *puller) writeLayer(m *layers.Manifest, want digest.Digest) (digest.Digest, error) {
	for _, e := range m.Entries {
		if e.Type == layers.TypeReg && !p.st.Layers.HasObject(e.Digest) {
			return "", fmt.Errorf("%s: layer %s: object %s of %s was not fetched", p.what, want, e.Digest, e.Path)
		}
	}
	d, err := p.st.Layers.WriteLayer(m)
	if err != nil {
		return "", fmt.Errorf("%s: %w", p.what, err)
	}
	if d != want {
		return "", fmt.Errorf("%s: layer %s was stored as %s: %w", p.what, want, d, layers.ErrCorrupt)
	}
	return d, nil
}
