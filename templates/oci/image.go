package oci

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"runtime"

	"github.com/acetate/acetate/layers"
	"github.com/acetate/acetate/templates"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// image is a template as an OCI image: config and manifest are built once,
// layers are generated from the store when read.
type image struct {
	config, manifest []byte
	layers           map[v1.Hash]*layer
}

// ImageOptions change what Image builds.
type ImageOptions struct {
	// BlobDir, when not empty, is a directory (an image layout's
	// blobs/sha256) that receives the compressed layers, named by digest.
	BlobDir string
	// Progress receives the bytes of file content read.
	Progress layers.Progress
}

// Image presents template t as an OCI image with one layer per acetate
// layer. Building it generates every layer once to learn its digests.
func Image(ctx context.Context, st *templates.Store, t *templates.Template, o ImageOptions) (v1.Image, error) {
	img := &image{layers: map[v1.Hash]*layer{}}
	cfg := v1.ConfigFile{
		Created:      v1.Time{Time: t.Created},
		Architecture: runtime.GOARCH,
		OS:           "linux",
		Config:       v1.Config{Cmd: t.Config.Cmd, Env: t.Config.Env, WorkingDir: t.Config.WorkingDir, User: t.Config.User},
		RootFS:       v1.RootFS{Type: "layers"},
	}
	man := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1}
	for _, d := range t.Layers {
		m, err := st.Layers.ReadLayer(d)
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", t.Ref, err)
		}
		l, err := newLayer(ctx, st.Layers, m, o.BlobDir, o.Progress)
		if err != nil {
			return nil, fmt.Errorf("template %s: layer %s: %w", t.Ref, d, err)
		}
		img.layers[l.digest] = l
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, l.diffID)
		cfg.History = append(cfg.History, v1.History{Created: cfg.Created, CreatedBy: "acetate layer " + d.String()})
		man.Layers = append(man.Layers, v1.Descriptor{MediaType: types.OCILayer, Size: l.size, Digest: l.digest})
	}
	var err error
	if img.config, err = json.Marshal(cfg); err != nil {
		return nil, err
	}
	man.Config = v1.Descriptor{MediaType: types.OCIConfigJSON, Size: int64(len(img.config)), Digest: sha256Hash(img.config)}
	if img.manifest, err = json.Marshal(man); err != nil {
		return nil, err
	}
	return partial.CompressedToImage(img)
}

func sha256Hash(b []byte) v1.Hash {
	h, _, _ := v1.SHA256(bytes.NewReader(b))
	return h
}

func (i *image) RawConfigFile() ([]byte, error)      { return i.config, nil }
func (i *image) RawManifest() ([]byte, error)        { return i.manifest, nil }
func (i *image) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }

func (i *image) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if l, ok := i.layers[h]; ok {
		return l, nil
	}
	return nil, fmt.Errorf("image has no layer %s", h)
}
