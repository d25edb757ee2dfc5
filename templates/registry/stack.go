package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/acetate/acetate/templates"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"
)

// StackArtifactType marks the artifact of a stack (see PushStack).
const StackArtifactType = "application/vnd.acetate.stack.v1"

// Stack is layers that stand on a template, with a payload the caller
// reads back: a container's differences and record, as package
// fs/container/archive pushes them.
type Stack struct {
	// Template is what the layers stand on.
	Template *templates.Template
	// Layers are the stack's own layers.
	Layers []digest.Digest
	// Payload is the caller's, carried as it is.
	Payload json.RawMessage
}

// stackConfig is what an artifact's config says of its stack.
type stackConfig struct {
	Template       templates.Ref   `json:"template"`
	TemplateLayers []digest.Digest `json:"templateLayers"`
	Payload        json.RawMessage `json:"payload"`
}

// TemplateTag is the tag under which PushStack keeps a template's image in
// the stack's repository: "template-NAME-TAG".
func TemplateTag(r templates.Ref) string {
	return "template-" + strings.NewReplacer("/", "-", ":", "-").Replace(r.Name+"-"+r.Tag)
}

// PushStack writes s to dst (REGISTRY/REPO:TAG) as an artifact of type
// StackArtifactType, in the format of a template's artifact (layer blobs,
// manifest chunks, packs: see the package doc) with the template and the
// payload in its config. Its subject is the template's image, tagged
// TemplateTag in the same repository, which is pushed first only when the
// registry has no image under that tag made of the same layers. Blobs the
// registry has are not sent again: a second push of a container that
// changed a few files sends the packs and chunks around them. It returns
// the artifact's manifest digest.
func PushStack(ctx context.Context, st *templates.Store, s Stack, dst string, o Options) (v1.Hash, error) {
	ref, err := ParseReference(dst, o)
	if err != nil {
		return v1.Hash{}, err
	}
	tag, ok := ref.(name.Tag)
	if !ok {
		return v1.Hash{}, fmt.Errorf("push to %q: name a tag (REGISTRY/REPO:TAG), not a digest", dst)
	}
	subject, err := templateImage(ctx, st, s.Template, tag.Context().Tag(TemplateTag(s.Template.Ref)), o)
	if err != nil {
		return v1.Hash{}, err
	}
	own := &templates.Template{Ref: s.Template.Ref, Layers: s.Layers, Config: s.Template.Config, Created: time.Now().UTC()}
	art, err := newArtifact(st, own, nil, &stackConfig{Template: s.Template.Ref, TemplateLayers: s.Template.Layers, Payload: s.Payload})
	if err != nil {
		return v1.Hash{}, err
	}
	img, err := art.image(subject)
	if err != nil {
		return v1.Hash{}, err
	}
	if err := remote.Write(tag, img, o.withProgress(ctx)...); err != nil {
		return v1.Hash{}, explain("push "+dst, err)
	}
	return img.Digest()
}

// templateImage returns the descriptor of template t's image at tag,
// pushing it there first unless the registry has it already.
func templateImage(ctx context.Context, st *templates.Store, t *templates.Template, tag name.Tag, o Options) (v1.Descriptor, error) {
	opts := o.remoteOptions(ctx)
	if desc, err := remote.Get(tag, opts...); err == nil {
		if img, err := desc.Image(); err == nil && imageOf(ctx, st, tag, img, t, o) {
			return desc.Descriptor, nil
		}
	}
	if _, err := Push(ctx, st, t, tag.String(), o); err != nil {
		return v1.Descriptor{}, err
	}
	desc, err := remote.Head(tag, opts...)
	if err != nil {
		return v1.Descriptor{}, explain("push "+tag.String(), err)
	}
	return *desc, nil
}

// imageOf reports whether img, found at tag, is the image of template t:
// its artifact lists t's layers.
func imageOf(ctx context.Context, st *templates.Store, tag name.Tag, img v1.Image, t *templates.Template, o Options) bool {
	man, err := img.Manifest()
	if err != nil || man.Annotations[ConfigAnnotation] == "" {
		return false
	}
	p := &puller{st: st, repo: tag.Context(), opts: o.remoteOptions(ctx), progress: noProgress{}, what: "push " + tag.String()}
	cfg, err := p.config(digest.Digest(man.Annotations[ConfigAnnotation]))
	if err != nil || cfg == nil || !cfg.describes(man) {
		return false
	}
	return slices.EqualFunc(cfg.Layers, t.Layers, func(l artifactLayer, d digest.Digest) bool { return l.Digest == d })
}

// PulledStack is a stack PullStack brought into a store.
type PulledStack struct {
	// Template is the store's template the layers stand on: one it had
	// (of the stack's name, or another with the same layers), or the one
	// pulled. It is not saved when the store had its layers under no name.
	Template *templates.Template
	// Layers are the stack's own layers, in the store.
	Layers  []digest.Digest
	Payload json.RawMessage
}

// PullStack fetches the stack at src (REGISTRY/REPO:TAG or @DIGEST, pushed
// by PushStack) into st: its template from the subject image when the
// store lacks the template's layers (as Pull does, under the template's
// name, which must then be free), and of the stack's own layers only the
// objects the store lacks. The layers are written but nothing refers to
// them: the caller holds the store's shared lock from before the call
// until it does.
func PullStack(ctx context.Context, st *templates.Store, src string, o Options) (*PulledStack, error) {
	ref, err := ParseReference(src, o)
	if err != nil {
		return nil, err
	}
	p := &puller{st: st, repo: ref.Context(), opts: o.remoteOptions(ctx), progress: o.Progress, what: "pull " + src}
	if p.progress == nil {
		p.progress = noProgress{}
	}
	img, err := remote.Image(ref, p.opts...)
	if err != nil {
		return nil, explain(p.what, err)
	}
	man, err := img.Manifest()
	if err != nil {
		return nil, explain(p.what, err)
	}
	if man.ArtifactType != StackArtifactType || man.Subject == nil {
		return nil, fmt.Errorf("%s: not a container pushed by acetate (artifact type %q)", p.what, man.ArtifactType)
	}
	cfg, err := p.config(digest.Digest(man.Config.Digest.String()))
	if err != nil {
		return nil, err
	}
	if cfg == nil || cfg.Stack == nil {
		return nil, fmt.Errorf("%s: the artifact's config is missing or describes no stack", p.what)
	}
	t, err := p.stackTemplate(ctx, cfg.Stack, man.Subject.Digest, o)
	if err != nil {
		return nil, err
	}
	ds, err := p.layers(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &PulledStack{Template: t, Layers: ds, Payload: cfg.Stack.Payload}, nil
}

// stackTemplate returns the template sc names: the store's, when it has
// the layers, else pulled from the image subject in the same repository.
func (p *puller) stackTemplate(ctx context.Context, sc *stackConfig, subject v1.Hash, o Options) (*templates.Template, error) {
	if t, err := p.st.Get(sc.Template); err == nil && slices.Equal(t.Layers, sc.TemplateLayers) {
		return t, nil
	}
	all, err := p.st.List()
	if err != nil {
		return nil, err
	}
	for _, t := range all {
		if slices.Equal(t.Layers, sc.TemplateLayers) {
			return t, nil
		}
	}
	if p.hasLayers(sc.TemplateLayers) {
		return &templates.Template{Ref: sc.Template, Layers: sc.TemplateLayers}, nil
	}
	if _, err := p.st.Get(sc.Template); !errors.Is(err, templates.ErrNotFound) {
		return nil, fmt.Errorf("%s: the container stands on template %s, which this store has in another version: pull that template under another name first, or remove this one", p.what, sc.Template)
	}
	t, err := Pull(ctx, p.st, p.repo.Digest(subject.String()).String(), sc.Template, o)
	if err != nil {
		return nil, err
	}
	if !slices.Equal(t.Layers, sc.TemplateLayers) {
		return nil, fmt.Errorf("%s: the template image holds other layers than the container stands on", p.what)
	}
	return t, nil
}

// hasLayers reports whether the store has every layer of ds.
func (p *puller) hasLayers(ds []digest.Digest) bool {
	for _, d := range ds {
		if _, err := p.st.Layers.ReadLayer(d); err != nil {
			return false
		}
	}
	return true
}
