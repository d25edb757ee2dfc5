package archive

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/acetate/acetate/fs/container"
	"github.com/acetate/acetate/fs/overlay"
	"github.com/acetate/acetate/templates/registry"
	"github.com/opencontainers/go-digest"
)

// payload is what a container pushed to a registry carries besides its
// layers (see Push): its record and the layer of its differences.
type payload struct {
	Format    string              `json:"format"`
	Name      string              `json:"name"`
	Container container.Container `json:"container"`
	State     digest.Digest       `json:"state"`
}

// PushOptions say how a container is pushed.
type PushOptions struct {
	// Freeze lets a running container be pushed (see ExportOptions).
	Freeze container.FreezeFunc
	// Registry is how the registry is reached.
	Registry registry.Options
}

// Push writes container name to dst (REGISTRY/REPO:TAG) with
// registry.PushStack: the same data as an archive without snapshots (its
// differences as a layer, its record) as an artifact whose subject is its
// template's image, which is sent only when the registry lacks it. Blobs
// the registry has are not sent again, so a second push of the container
// sends about what changed since the first. Report.Bytes is what was sent.
func Push(ctx context.Context, m *container.Manager, name, dst string, o PushOptions) (*Report, error) {
	st := m.Store()
	lock, err := st.Layers.LockShared()
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	state, err := m.Capture(ctx, name, container.SnapshotOptions{Freeze: o.Freeze})
	if err != nil {
		return nil, err
	}
	p, err := json.Marshal(payload{Format: Format, Name: name, Container: state.Container, State: state.Layer})
	if err != nil {
		return nil, err
	}
	traffic := o.Registry.Traffic
	if traffic == nil {
		traffic = &registry.Traffic{}
		o.Registry.Traffic = traffic
	}
	s := registry.Stack{Template: templateOf(st, &state.Container), Layers: []digest.Digest{state.Layer}, Payload: p}
	if _, err := registry.PushStack(ctx, st, s, dst, o.Registry); err != nil {
		return nil, fmt.Errorf("push %s: %w", name, err)
	}
	return &Report{Name: name, Layers: 1, Frozen: state.Frozen, Bytes: traffic.Sent.Load()}, nil
}

// Prefetch brings into m's store what Pull of src would fetch, without
// making the container: the template where the store lacks it, the
// objects of the container's differences, and the overlay driver's
// metadata trees of the template's layers. A move runs it while the source
// still runs, so that the Pull of the last push, while the container is
// down, fetches only what changed since, and its first mount builds
// nothing. What it fetched is referenced by nothing until that Pull: GC
// in between removes it, and Pull fetches it again. Report.Bytes is what
// was received.
func Prefetch(ctx context.Context, m *container.Manager, src string, o registry.Options) (*Report, error) {
	st := m.Store()
	lock, err := st.Layers.LockShared()
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	if o.Traffic == nil {
		o.Traffic = &registry.Traffic{}
	}
	ps, err := registry.PullStack(ctx, st, src, o)
	if err != nil {
		return nil, err
	}
	if _, err := overlay.BuildMeta(st.Layers, ps.Template.Layers); err != nil {
		return nil, err
	}
	return &Report{Layers: len(ps.Layers), Bytes: o.Traffic.Received.Load()}, nil
}

// Pull makes container name (empty: the name it was pushed under) from
// the container Push wrote at src, fetching its template only when the
// store lacks it and of its differences only the objects the store lacks.
// Report.Bytes is what was received. The container appears whole or not
// at all (see container.Manager.Adopt); ErrExists when the name is taken.
// Settings that reach the host are taken out unless o.TrustSettings (see
// Report.Dropped).
func Pull(ctx context.Context, m *container.Manager, src, name string, o PullOptions) (*Report, error) {
	st := m.Store()
	if name != "" {
		if err := container.ValidateName(name); err != nil {
			return nil, err
		}
		if _, err := m.Get(name); err == nil {
			return nil, fmt.Errorf("pull %s: %w", name, container.ErrExists)
		}
	}
	lock, err := st.Layers.LockShared()
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	if o.Registry.Traffic == nil {
		o.Registry.Traffic = &registry.Traffic{}
	}
	ps, err := registry.PullStack(ctx, st, src, o.Registry)
	if err != nil {
		return nil, err
	}
	var p payload
	if err := json.Unmarshal(ps.Payload, &p); err != nil {
		return nil, fmt.Errorf("pull %s: the container's record: %w", src, err)
	}
	if p.Format != Format || len(ps.Layers) != 1 || ps.Layers[0] != p.State {
		return nil, fmt.Errorf("pull %s: not a container pushed by this acetate (format %q)", src, p.Format)
	}
	if name == "" {
		name = p.Name
	}
	rec := p.Container
	rec.Name, rec.Template, rec.Layers = name, ps.Template.Ref.String(), ps.Template.Layers
	dropped := confineAll(o.TrustSettings, &rec, nil)
	if err := m.Adopt(ctx, &rec, p.State, nil, nil); err != nil {
		return nil, fmt.Errorf("pull %s: %w", name, err)
	}
	return &Report{Name: name, Layers: 1, Bytes: o.Registry.Traffic.Received.Load(), Dropped: dropped}, nil
}

// PullOptions say how a container is pulled.
type PullOptions struct {
	// Registry is how the registry is reached.
	Registry registry.Options
	// TrustSettings keeps the settings that reach the host (see
	// ImportOptions).
	TrustSettings bool
}
