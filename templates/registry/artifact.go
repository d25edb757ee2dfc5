package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/acetate/acetate/templates"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
)

// Names and media types of what a push writes beside the image.
const (
	// ArtifactType marks the artifact that holds a template's layers.
	ArtifactType = "application/vnd.acetate.template.v1"
	// TagSuffix is appended to the image's tag to tag the artifact.
	TagSuffix = ".acetate"
	// ConfigAnnotation, on the image manifest, is the digest of the
	// artifact's config blob: where a puller starts.
	ConfigAnnotation = "org.acetate.template.config"
	// BaseAnnotation, on the image manifest, names the template (NAME:TAG)
	// an application template was stacked on, for the puller to name it
	// as the pulled template's base when it has that template.
	BaseAnnotation = "org.acetate.template.base"

	configType types.MediaType = "application/vnd.acetate.template.config.v1+json"
	layerType  types.MediaType = "application/vnd.acetate.layer.v1.tar+zstd"
	chunkType  types.MediaType = "application/vnd.acetate.entries.v1.json+zstd"
	packType   types.MediaType = "application/vnd.acetate.pack.v1.tar+zstd"
)

// artifactConfig is the config blob of the artifact.
type artifactConfig struct {
	// Image names the config and layer blobs of the image the artifact
	// describes: a puller takes the artifact only for that image, not for
	// one another tool made from it (keeping the annotation). A stack's
	// artifact has none: its subject is the image.
	Image   *imageBlobs      `json:"image,omitempty"`
	Config  templates.Config `json:"config"`
	Created time.Time        `json:"created"`
	Layers  []artifactLayer  `json:"layers"`
	// Stack is set in the artifact of a stack (see PushStack).
	Stack *stackConfig `json:"stack,omitempty"`
}

// imageBlobs are the blobs of an image manifest.
type imageBlobs struct {
	Config v1.Hash   `json:"config"`
	Layers []v1.Hash `json:"layers"`
}

// blobsOf lists the blobs of image manifest m.
func blobsOf(m *v1.Manifest) imageBlobs {
	b := imageBlobs{Config: m.Config.Digest}
	for _, l := range m.Layers {
		b.Layers = append(b.Layers, l.Digest)
	}
	return b
}

// describes reports whether the artifact was made for the image m.
func (c *artifactConfig) describes(m *v1.Manifest) bool {
	b := blobsOf(m)
	return c.Image != nil && b.Config == c.Image.Config && slices.Equal(b.Layers, c.Image.Layers)
}

// artifactLayer is one acetate layer, the number of entries of its
// manifest, and the blob describing it.
type artifactLayer struct {
	Digest  digest.Digest `json:"digest"`
	Entries int           `json:"entries"`
	Blob    digest.Digest `json:"blob"`
}

// blob is one blob of the artifact: bytes in memory, or generated on read.
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

// artifact is the acetate artifact of one template. Packs are generated once
// to learn their digests and again only for those the registry lacks.
type artifact struct {
	// kind is the manifest's artifactType.
	kind   string
	config []byte
	blobs  map[v1.Hash]*blob
	order  []*blob
}

// newArtifact describes template t, whose image is made of blobs: its
// layer blobs, manifest chunks, packs and the config listing them. With
// stack set, it is the artifact of a stack, whose layers t lists.
func newArtifact(st *templates.Store, t *templates.Template, image *imageBlobs, stack *stackConfig) (*artifact, error) {
	a := &artifact{kind: ArtifactType, blobs: map[v1.Hash]*blob{}}
	cfg := artifactConfig{Image: image, Config: t.Config, Created: t.Created, Stack: stack}
	if stack != nil {
		a.kind = StackArtifactType
	}
	for _, d := range t.Layers {
		m, err := st.Layers.ReadLayer(d)
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", t.Ref, err)
		}
		var packs []pack
		for _, objs := range partition(m) {
			p, err := describePack(st.Layers, objs)
			if err != nil {
				return nil, fmt.Errorf("template %s: layer %s: %w", t.Ref, d, err)
			}
			packs = append(packs, p)
			a.add(&blob{digest: hash(p.digest), size: p.size, media: packType, open: func() (io.ReadCloser, error) {
				pr, pw := io.Pipe()
				go func() { pw.CloseWithError(writePack(st.Layers, objs, pw)) }()
				return pr, nil
			}})
		}
		chunks, err := chunkEntries(m.Entries)
		if err != nil {
			return nil, fmt.Errorf("template %s: layer %s: %w", t.Ref, d, err)
		}
		var chunkList []pack
		for _, c := range chunks {
			cb := bytesBlob(c.blob, chunkType)
			a.add(cb)
			chunkList = append(chunkList, pack{digest: c.digest, size: cb.size})
		}
		data, err := encodeLayerBlob(chunkList, packs)
		if err != nil {
			return nil, fmt.Errorf("template %s: layer %s: %w", t.Ref, d, err)
		}
		lb := bytesBlob(data, layerType)
		a.add(lb)
		cfg.Layers = append(cfg.Layers, artifactLayer{Digest: d, Entries: len(m.Entries), Blob: digest.Digest(lb.digest.String())})
	}
	var err error
	a.config, err = json.Marshal(cfg)
	return a, err
}

func hash(d digest.Digest) v1.Hash {
	return v1.Hash{Algorithm: d.Algorithm().String(), Hex: d.Encoded()}
}

func (a *artifact) add(b *blob) {
	if _, dup := a.blobs[b.digest]; !dup {
		a.blobs[b.digest] = b
		a.order = append(a.order, b)
	}
}

// configDigest is the digest of the config blob.
func (a *artifact) configDigest() v1.Hash {
	h, _, _ := v1.SHA256(bytes.NewReader(a.config))
	return h
}

// image is the artifact as a v1.Image for remote.Write: an OCI manifest
// with artifactType a.kind whose subject is the template's image.
func (a *artifact) image(subject v1.Descriptor) (v1.Image, error) {
	man := v1.Manifest{
		SchemaVersion: 2, MediaType: types.OCIManifestSchema1, ArtifactType: a.kind, Subject: &subject,
		Config: v1.Descriptor{MediaType: configType, Size: int64(len(a.config)), Digest: a.configDigest()},
	}
	for _, b := range a.order {
		man.Layers = append(man.Layers, v1.Descriptor{MediaType: b.media, Size: b.size, Digest: b.digest})
	}
	raw, err := json.Marshal(man)
	if err != nil {
		return nil, err
	}
	return partial.CompressedToImage(&artifactImage{a: a, manifest: raw})
}

// artifactImage is the minimal core go-containerregistry completes.
type artifactImage struct {
	a        *artifact
	manifest []byte
}

func (i *artifactImage) RawConfigFile() ([]byte, error)      { return i.a.config, nil }
func (i *artifactImage) RawManifest() ([]byte, error)        { return i.manifest, nil }
func (i *artifactImage) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }

func (i *artifactImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if b, ok := i.a.blobs[h]; ok {
		return b, nil
	}
	return nil, fmt.Errorf("artifact has no blob %s", h)
}
