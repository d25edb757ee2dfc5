package registry

import (
	"context"
	"fmt"

	"github.com/acetate/acetate/layers"
	"github.com/acetate/acetate/templates"
	"github.com/acetate/acetate/templates/oci"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Push writes template t to dst (REGISTRY/REPO:TAG) as an OCI image, and
// beside it, tagged TAG.acetate, the artifact that lets acetate hosts fetch
// only the objects they lack. Blobs the registry already has are not sent
// again. An application template's image names its base in
// BaseAnnotation. It returns the image's manifest digest.
func Push(ctx context.Context, st *templates.Store, t *templates.Template, dst string, o Options) (v1.Hash, error) {
	ref, err := ParseReference(dst, o)
	if err != nil {
		return v1.Hash{}, err
	}
	tag, ok := ref.(name.Tag)
	if !ok {
		return v1.Hash{}, fmt.Errorf("push to %q: name a tag (REGISTRY/REPO:TAG), not a digest", dst)
	}
	plain, err := oci.Image(ctx, st, t, oci.ImageOptions{})
	if err != nil {
		return v1.Hash{}, err
	}
	m, err := plain.Manifest()
	if err != nil {
		return v1.Hash{}, err
	}
	blobs := blobsOf(m)
	art, err := newArtifact(st, t, &blobs, nil)
	if err != nil {
		return v1.Hash{}, err
	}
	ann := map[string]string{ConfigAnnotation: art.configDigest().String()}
	if t.Base != "" {
		ann[BaseAnnotation] = t.Base
	}
	img, ok := mutate.Annotations(plain, ann).(v1.Image)
	if !ok {
		return v1.Hash{}, fmt.Errorf("push %s: annotating the image failed", dst)
	}
	if err := remote.Write(tag, img, o.withProgress(ctx)...); err != nil {
		return v1.Hash{}, explain("push "+dst, err)
	}
	d, err := img.Digest()
	if err != nil {
		return v1.Hash{}, err
	}
	mt, _ := img.MediaType()
	size, _ := img.Size()
	artImg, err := art.image(v1.Descriptor{MediaType: mt, Size: size, Digest: d})
	if err != nil {
		return v1.Hash{}, err
	}
	if err := remote.Write(artifactTag(tag), artImg, o.withProgress(ctx)...); err != nil {
		return v1.Hash{}, explain("push "+dst+TagSuffix, err)
	}
	return d, nil
}

// artifactTag is the tag of the artifact for the image tagged tag.
func artifactTag(tag name.Tag) name.Tag {
	return tag.Context().Tag(tag.TagStr() + TagSuffix)
}

// withProgress adds a progress channel feeding o.Progress to the options.
func (o Options) withProgress(ctx context.Context) []remote.Option {
	opts := o.remoteOptions(ctx)
	if o.Progress == nil {
		return opts
	}
	ch := make(chan v1.Update, 16)
	go forward(ch, o.Progress)
	return append(opts, remote.WithProgress(ch))
}

// forward turns the client's cumulative updates into Total and Advance.
func forward(ch <-chan v1.Update, p layers.Progress) {
	var total, done int64
	for u := range ch {
		if u.Total != total {
			total = u.Total
			p.Total(total)
		}
		if u.Complete > done {
			p.Advance(u.Complete - done)
			done = u.Complete
		}
	}
}
