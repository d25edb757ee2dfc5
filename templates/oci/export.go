package oci

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/acetate/acetate/layers"
	"github.com/acetate/acetate/templates"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"
)

// ExportLayout writes template t into the OCI image layout at dir under
// ref name tag, creating the layout when dir does not exist or is empty and
// replacing an image of the same name in an existing one. Layer blobs are
// written once, while their digests are computed; index.json is updated
// last, so an export that fails leaves at worst unreferenced blobs.
func ExportLayout(ctx context.Context, st *templates.Store, t *templates.Template, dir, tag string, p layers.Progress) error {
	lp, err := openLayout(dir)
	if err != nil {
		return fmt.Errorf("export to %s: %w", dir, err)
	}
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return fmt.Errorf("export to %s: %w", dir, err)
	}
	img, err := Image(ctx, st, t, ImageOptions{BlobDir: blobs, Progress: p})
	if err != nil {
		return err
	}
	annotations := map[string]string{RefNameAnnotation: tag}
	if err := lp.ReplaceImage(img, match.Annotation(RefNameAnnotation, tag), layout.WithAnnotations(annotations)); err != nil {
		return fmt.Errorf("export to %s: %w", dir, err)
	}
	return nil
}

// openLayout opens the image layout at dir, or makes one when dir is missing
// or empty.
func openLayout(dir string) (layout.Path, error) {
	if lp, err := layout.FromPath(dir); err == nil {
		return lp, nil
	}
	names, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	if len(names) > 0 {
		return "", errors.New("not an OCI image layout and not empty")
	}
	return layout.Write(dir, empty.Index)
}
