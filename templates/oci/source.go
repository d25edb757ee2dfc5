package oci

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// RefNameAnnotation names an image in an image layout's index.json.
const RefNameAnnotation = "org.opencontainers.image.ref.name"

// OpenSource opens the image a source names: "oci:DIR[:REF]" (an OCI image
// layout; REF picks the manifest annotated with that ref name, and may be
// left out when the layout holds one image) or "docker-archive:FILE" (a
// `docker save` archive holding one image).
func OpenSource(source string) (v1.Image, error) {
	switch kind, rest, _ := strings.Cut(source, ":"); kind {
	case "oci":
		dir, ref, _ := strings.Cut(rest, ":")
		img, err := layoutImage(dir, ref)
		if err != nil {
			return nil, fmt.Errorf("source %q: %w", source, err)
		}
		return img, nil
	case "docker-archive":
		img, err := tarball.ImageFromPath(rest, nil)
		if err != nil {
			return nil, fmt.Errorf("source %q: %w", source, err)
		}
		return img, nil
	}
	return nil, fmt.Errorf("source %q: use oci:DIR[:REF] or docker-archive:FILE.tar", source)
}

// layoutImage finds the image ref in the layout at dir.
func layoutImage(dir, ref string) (v1.Image, error) {
	ii, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("not an OCI image layout: %w", err)
	}
	im, err := ii.IndexManifest()
	if err != nil {
		return nil, err
	}
	var found []v1.Descriptor
	var names []string
	for _, d := range im.Manifests {
		name := d.Annotations[RefNameAnnotation]
		names = append(names, name)
		if ref == "" || name == ref {
			found = append(found, d)
		}
	}
	switch {
	case len(found) == 0 && ref != "":
		return nil, fmt.Errorf("no image named %q in the layout (it has %q)", ref, names)
	case len(found) != 1:
		return nil, fmt.Errorf("the layout holds %d images (%q): name one as oci:DIR:REF", len(found), names)
	}
	return pickImage(ii, found[0])
}

// pickImage returns the image d names, choosing this machine's platform
// when d is an index.
func pickImage(ii v1.ImageIndex, d v1.Descriptor) (v1.Image, error) {
	if !d.MediaType.IsIndex() {
		img, err := ii.Image(d.Digest)
		if err != nil {
			return nil, err
		}
		return img, verifyManifest(img, d)
	}
	child, err := ii.ImageIndex(d.Digest)
	if err != nil {
		return nil, err
	}
	im, err := child.IndexManifest()
	if err != nil {
		return nil, err
	}
	for _, m := range im.Manifests {
		if m.Platform == nil || (m.Platform.OS == "linux" && m.Platform.Architecture == runtime.GOARCH) {
			return pickImage(child, m)
		}
	}
	return nil, fmt.Errorf("index %s has no image for linux/%s", d.Digest, runtime.GOARCH)
}

// verifyManifest checks the manifest of img against the digest and size of
// the descriptor that named it, as a registry client does (an image
// layout's reader does not).
func verifyManifest(img v1.Image, d v1.Descriptor) error {
	raw, err := img.RawManifest()
	if err == nil {
		_, err = io.Copy(io.Discard, Verify(bytes.NewReader(raw), d.Digest, d.Size))
	}
	if err != nil {
		return fmt.Errorf("image manifest: %w", err)
	}
	return nil
}
