package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"

	"github.com/acetate/acetate/layers"
	"github.com/acetate/acetate/templates"
	"github.com/acetate/acetate/templates/oci"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"
)

// Pull makes template r from src (REGISTRY/REPO:TAG or @DIGEST). When the
// registry holds the acetate artifact for that image, only the objects the
// store lacks are fetched; otherwise the image layers are imported. The ref
// is written last: on error there is no new template, and objects already
// fetched and verified stay in the store for the next attempt.
func Pull(ctx context.Context, st *templates.Store, src string, r templates.Ref, o Options) (*templates.Template, error) {
	ref, err := ParseReference(src, o)
	if err != nil {
		return nil, err
	}
	opts := append(o.remoteOptions(ctx), remote.WithPlatform(v1.Platform{OS: "linux", Architecture: runtime.GOARCH}))
	img, err := remote.Image(ref, opts...)
	if err != nil {
		return nil, explain("pull "+src, err)
	}
	d, err := img.Digest()
	if err != nil {
		return nil, explain("pull "+src, err)
	}
	p := &puller{st: st, repo: ref.Context(), opts: o.remoteOptions(ctx), progress: o.Progress, what: "pull " + src}
	tag, ok := ref.(name.Tag)
	if ok {
		cfg, err := p.artifact(artifactTag(tag), d)
		if err != nil {
			return nil, err
		}
		if cfg != nil {
			return p.pull(ctx, r, cfg)
		}
	}
	t, err := oci.Import(ctx, st, r, img, o.Progress)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", src, err)
	}
	return t, nil
}

// puller fetches one template's artifact blobs from one repository.
type puller struct {
	st       *templates.Store
	repo     name.Repository
	opts     []remote.Option
	progress layers.Progress
	what     string
	sizes    map[digest.Digest]int64 // size of every blob the artifact lists
}

// artifact returns the config of the acetate artifact at tag when it
// describes the image with digest image, and nil when there is none.
func (p *puller) artifact(tag name.Tag, image v1.Hash) (*artifactConfig, error) {
	desc, err := remote.Get(tag, p.opts...)
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, explain(p.what, err)
	}
	var man v1.Manifest
	if err := json.Unmarshal(desc.Manifest, &man); err != nil {
		return nil, fmt.Errorf("%s: artifact %s: %w", p.what, tag, err)
	}
	if man.ArtifactType != ArtifactType || man.Subject == nil || man.Subject.Digest != image || man.Config.MediaType != configType {
		return nil, nil // not ours, or stale: the tag was pushed again by another tool
	}
	p.sizes = map[digest.Digest]int64{}
	for _, l := range man.Layers {
		p.sizes[digest.Digest(l.Digest.String())] = l.Size
	}
	raw, err := p.blob(digest.Digest(man.Config.Digest.String()), 1<<24)
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

// blob reads a whole small blob, verified, refusing more than limit bytes.
func (p *puller) blob(d digest.Digest, limit int64) ([]byte, error) {
	rc, err := p.open(d)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(oci.Verify(rc, v1.Hash{Algorithm: d.Algorithm().String(), Hex: d.Encoded()}), limit+1))
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
	stack := make([]*layers.Manifest, len(cfg.Layers))
	var todo []fetch
	planned := map[digest.Digest]bool{}
	for i, al := range cfg.Layers {
		if stack[i], err = p.layerManifest(al); err != nil {
			return nil, err
		}
		f, err := p.plan(al, stack[i], planned)
		if err != nil {
			return nil, err
		}
		todo = append(todo, f...)
	}
	if err := p.fetch(ctx, todo); err != nil {
		return nil, err
	}
	ds := make([]digest.Digest, len(stack))
	for i, m := range stack {
		for _, e := range m.Entries {
			if e.Type == layers.TypeReg && !p.st.Layers.HasObject(e.Digest) {
				return nil, fmt.Errorf("%s: layer %s: object %s of %s was not fetched", p.what, cfg.Layers[i].Digest, e.Digest, e.Path)
			}
		}
		d, err := p.st.Layers.WriteLayer(m)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.what, err)
		}
		if d != cfg.Layers[i].Digest {
			return nil, fmt.Errorf("%s: layer %s was stored as %s: %w", p.what, cfg.Layers[i].Digest, d, layers.ErrCorrupt)
		}
		ds[i] = d
	}
	t := &templates.Template{Ref: r, Layers: ds, Config: cfg.Config, Created: cfg.Created}
	if err := p.st.Save(t); err != nil {
		return nil, err
	}
	return t, nil
}

// layerManifest returns the manifest of layer al, from the store when it
// has it, else fetched and checked against the layer digest.
func (p *puller) layerManifest(al artifactLayer) (*layers.Manifest, error) {
	if err := al.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("%s: artifact layer %q: %w", p.what, al.Digest, err)
	}
	if m, err := p.st.Layers.ReadLayer(al.Digest); err == nil {
		return m, nil
	}
	z, err := p.blob(al.Manifest, 1<<30)
	if err != nil {
		return nil, err
	}
	raw, err := layers.Decompress(z)
	if err != nil {
		return nil, fmt.Errorf("%s: layer %s: manifest blob does not decompress: %w", p.what, al.Digest, err)
	}
	if got := digest.FromBytes(raw); got != al.Digest {
		return nil, fmt.Errorf("%s: layer %s: manifest hashes to %s: %w", p.what, al.Digest, got, layers.ErrCorrupt)
	}
	m, err := layers.DecodeManifest(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: layer %s: %w", p.what, al.Digest, err)
	}
	return m, nil
}
