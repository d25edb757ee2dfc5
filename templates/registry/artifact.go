package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/acetate/acetate/layers"
	"github.com/acetate/acetate/templates"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
)

// Media types of what a push writes beside the image.
const (
	// ArtifactType marks the artifact that describes a template's layers.
	ArtifactType = "application/vnd.acetate.template.v1"
	// TagSuffix is appended to the image's tag to tag the artifact.
	TagSuffix = ".acetate"

	configType   types.MediaType = "application/vnd.acetate.template.config.v1+json"
	manifestType types.MediaType = "application/vnd.acetate.layer.manifest.v1+zstd"
	packType     types.MediaType = "application/vnd.acetate.pack.v1.tar+zstd"
	objectType   types.MediaType = "application/vnd.acetate.object.v1"
)

// artifactConfig is the config blob of the artifact.
type artifactConfig struct {
	Config  templates.Config `json:"config"`
	Created time.Time        `json:"created"`
	Layers  []artifactLayer  `json:"layers"`
}

// artifactLayer is one acetate layer: its digest, the blob holding its
// manifest, and its packs in partition order.
type artifactLayer struct {
	Digest   digest.Digest   `json:"digest"`
	Manifest digest.Digest   `json:"manifest"`
	Packs    []digest.Digest `json:"packs"`
}

// blob is one blob of the artifact: bytes held in memory, or an object read
// from the store.
type blob struct {
	digest v1.Hash
	size   int64
	media  types.MediaType
	data   []byte
	open   func() (io.ReadCloser, error)
}

func bytesBlob(data []byte, media types.MediaType) *blob {
	h, _, _ := v1.SHA256(bytes.NewReader(data))
	return &blob{digest: h, size: int64(len(data)), media: media, data: data}
}

func (b *blob) Digest() (v1.Hash, error)            { return b.digest, nil }
func (b *blob) Size() (int64, error)                { return b.size, nil }
func (b *blob) MediaType() (types.MediaType, error) { return b.media, nil }

func (b *blob) Compressed() (io.ReadCloser, error) {
	if b.open != nil {
		return b.open()
	}
	return io.NopCloser(bytes.NewReader(b.data)), nil
}

// artifact is the acetate artifact as a v1.Image, for remote.Write.
type artifact struct {
	config, manifest []byte
	blobs            map[v1.Hash]*blob
}

func (a *artifact) RawConfigFile() ([]byte, error)      { return a.config, nil }
func (a *artifact) RawManifest() ([]byte, error)        { return a.manifest, nil }
func (a *artifact) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }

func (a *artifact) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if b, ok := a.blobs[h]; ok {
		return b, nil
	}
	return nil, fmt.Errorf("artifact has no blob %s", h)
}

// newArtifact builds the artifact for template t, whose image is subject.
func newArtifact(st *templates.Store, t *templates.Template, subject v1.Descriptor) (v1.Image, error) {
	a := &artifact{blobs: map[v1.Hash]*blob{}}
	cfg := artifactConfig{Config: t.Config, Created: t.Created}
	man := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, ArtifactType: ArtifactType, Subject: &subject}
	add := func(b *blob) {
		if _, dup := a.blobs[b.digest]; !dup {
			a.blobs[b.digest] = b
			man.Layers = append(man.Layers, v1.Descriptor{MediaType: b.media, Size: b.size, Digest: b.digest})
		}
	}
	for _, d := range t.Layers {
		m, err := st.Layers.ReadLayer(d)
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", t.Ref, err)
		}
		mb := bytesBlob(layers.Compress(m.Encode()), manifestType)
		add(mb)
		al := artifactLayer{Digest: d, Manifest: digest.Digest(mb.digest.String())}
		sp := partition(m)
		for _, objs := range sp.packs {
			data, err := packBytes(st.Layers, objs)
			if err != nil {
				return nil, fmt.Errorf("template %s: layer %s: pack: %w", t.Ref, d, err)
			}
			pb := bytesBlob(data, packType)
			add(pb)
			al.Packs = append(al.Packs, digest.Digest(pb.digest.String()))
		}
		for _, o := range sp.big {
			add(&blob{digest: v1.Hash{Algorithm: "sha256", Hex: o.digest.Encoded()}, size: o.size, media: objectType,
				open: func() (io.ReadCloser, error) { return st.Layers.OpenObject(o.digest, o.size) }})
		}
		cfg.Layers = append(cfg.Layers, al)
	}
	var err error
	if a.config, err = json.Marshal(cfg); err != nil {
		return nil, err
	}
	ch, _, _ := v1.SHA256(bytes.NewReader(a.config))
	man.Config = v1.Descriptor{MediaType: configType, Size: int64(len(a.config)), Digest: ch}
	if a.manifest, err = json.Marshal(man); err != nil {
		return nil, err
	}
	return partial.CompressedToImage(a)
}
