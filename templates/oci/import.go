package oci

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/acetate/acetate/layers"
	"github.com/acetate/acetate/templates"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"
)

// Import makes template r from img, one acetate layer per image layer. Each
// layer blob is verified against its digest while it is read; the staged
// content of all layers is committed only after every layer has been read
// and verified, and the ref is written last. On error the store holds no
// new object, layer or template.
func Import(ctx context.Context, st *templates.Store, r templates.Ref, img v1.Image, p layers.Progress) (*templates.Template, error) {
	if err := verifyConfig(img); err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	ls, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("image layers: %w", err)
	}
	lock, err := st.Layers.LockShared()
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	var trees []*layers.Tree
	defer func() {
		for _, t := range trees {
			t.Abort()
		}
	}()
	var stack []*layers.Manifest
	if len(cf.RootFS.DiffIDs) != len(ls) {
		return nil, fmt.Errorf("image config lists %d diff_ids for %d layers: %w", len(cf.RootFS.DiffIDs), len(ls), layers.ErrCorrupt)
	}
	for i, l := range ls {
		t, err := readLayer(ctx, st.Layers, l, cf.RootFS.DiffIDs[i], p)
		if err != nil {
			return nil, fmt.Errorf("image layer %d of %d: %w", i+1, len(ls), err)
		}
		if t == nil {
			continue // an empty layer changes nothing
		}
		trees = append(trees, t)
		inheritImplied(t, layers.Merge(stack))
		stack = append(stack, t.Manifest)
	}
	if len(trees) == 0 {
		return nil, fmt.Errorf("image has no layers with content")
	}
	var ds []digest.Digest
	for _, t := range trees {
		d, err := t.Commit(t.Manifest)
		if err != nil {
			return nil, fmt.Errorf("import %s: %w", r, err)
		}
		ds = append(ds, d)
	}
	trees = nil
	t := &templates.Template{Ref: r, Layers: ds, Config: configOf(cf), Created: createdOf(cf)}
	if err := st.Save(t); err != nil {
		return nil, err
	}
	return t, nil
}

// verifyConfig checks the image config blob against the digest and size
// its manifest declares, as a registry client does (an image layout's
// reader does not).
func verifyConfig(img v1.Image) error {
	m, err := img.Manifest()
	if err != nil {
		return fmt.Errorf("image manifest: %w", err)
	}
	raw, err := img.RawConfigFile()
	if err == nil {
		_, err = io.Copy(io.Discard, Verify(bytes.NewReader(raw), m.Config.Digest, m.Config.Size))
	}
	if err != nil {
		return fmt.Errorf("image config: %w", err)
	}
	return nil
}

// readLayer stages one image layer, verifying its blob against its digest
// and size and its uncompressed stream against diffID, the config's. An
// empty layer (a tar stream without entries, as some image builders write
// for a config step) gives no tree and no error.
func readLayer(ctx context.Context, s *layers.Store, l v1.Layer, diffID v1.Hash, p layers.Progress) (*layers.Tree, error) {
	d, size, err := describeLayer(l)
	if err != nil {
		return nil, err
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", d, err)
	}
	defer rc.Close()
	vr := Verify(rc, d, size)
	tarStream := normalized(vr, diffID)
	t, err := s.ReadTar(ctx, tarStream, layers.TarOptions{OCIWhiteouts: true}, p)
	tarStream.Close()
	// The digest check comes first: a changed blob usually also fails to
	// decompress, and the digest is what says why.
	if derr := drain(vr); derr != nil {
		if t != nil {
			t.Abort()
		}
		return nil, derr
	}
	if err != nil && tarStream.empty {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", d, err)
	}
	return t, nil
}

// describeLayer returns what the image manifest declares of layer l: its
// digest and its size, refused when negative.
func describeLayer(l v1.Layer) (v1.Hash, int64, error) {
	d, err := l.Digest()
	if err != nil {
		return v1.Hash{}, 0, err
	}
	size, err := l.Size()
	if err == nil && size < 0 {
		err = fmt.Errorf("declares a size of %d bytes, which no blob has", size)
	}
	if err != nil {
		return v1.Hash{}, 0, fmt.Errorf("blob %s: %w", d, err)
	}
	return d, size, nil
}

// inheritImplied gives the directories a layer implies without naming them
// the metadata they have in the layers below (lower, a merged view), so that
// stacking the layer does not change them.
func inheritImplied(t *layers.Tree, lower []layers.Entry) {
	byPath := func(e layers.Entry, p string) int { return layers.ComparePaths(e.Path, p) }
	for _, dir := range t.Implied {
		li, ok := slices.BinarySearchFunc(lower, dir, byPath)
		ti, tok := slices.BinarySearchFunc(t.Manifest.Entries, dir, byPath)
		if !ok || !tok || lower[li].Type != layers.TypeDir {
			continue
		}
		e, from := &t.Manifest.Entries[ti], &lower[li]
		e.Mode, e.UID, e.GID, e.Mtime, e.Xattrs = from.Mode, from.UID, from.GID, from.Mtime, from.Xattrs
	}
}

// configOf keeps what a template's config holds of an image config.
func configOf(cf *v1.ConfigFile) templates.Config {
	c := cf.Config
	var cmd []string
	cmd = append(append(cmd, c.Entrypoint...), c.Cmd...)
	return templates.Config{Cmd: cmd, Env: c.Env, WorkingDir: c.WorkingDir, User: c.User}
}

func createdOf(cf *v1.ConfigFile) time.Time {
	if cf.Created.IsZero() {
		return time.Now().UTC()
	}
	return cf.Created.UTC()
}
