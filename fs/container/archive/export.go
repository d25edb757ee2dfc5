package archive

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/acetate/acetate/fs/container"
	"github.com/acetate/acetate/internal/iocount"
	"github.com/acetate/acetate/layers"
	"github.com/acetate/acetate/templates"
	"github.com/opencontainers/go-digest"
)

// Format is the Index's Format of the archives this package writes.
const Format = "acetate-container-archive/1"

// Index is an archive's first entry (see the package doc).
type Index struct {
	Format string `json:"format"`
	// Name is the container's name where it was exported.
	Name string `json:"name"`
	// Container is its record: template, template layers, settings.
	Container container.Container `json:"container"`
	// State is the layer of its differences.
	State digest.Digest `json:"state"`
	// Snapshots are the snapshots carried along, oldest first.
	Snapshots []*container.Snapshot `json:"snapshots"`
	// Since is the snapshot an incremental archive continues from.
	Since *Base `json:"since,omitempty"`
	// Template is the template's record when its layers are carried.
	Template *templates.Template `json:"template,omitempty"`
	// Layers and Objects list the entries that follow, in order.
	Layers  []digest.Digest `json:"layers"`
	Objects []Object        `json:"objects"`
	// Created is when the archive was written.
	Created time.Time `json:"created"`
}

// Base names the snapshot an incremental archive continues from.
type Base struct {
	Snapshot string        `json:"snapshot"`
	Layer    digest.Digest `json:"layer"`
}

// Object is one file object of an archive.
type Object struct {
	Digest digest.Digest `json:"digest"`
	Size   int64         `json:"size"`
}

// ExportOptions say what an export carries.
type ExportOptions struct {
	// Since makes an incremental archive continuing from this snapshot.
	Since string
	// WithTemplate carries the template's layers and their objects.
	WithTemplate bool
	// Freeze lets a running container be exported (see
	// container.SnapshotOptions); without it a running one is refused.
	Freeze container.FreezeFunc
	// Progress reports the bytes of objects written.
	Progress layers.Progress
}

// Report says what an export wrote or an import read.
type Report struct {
	Name      string `json:"name"`
	Snapshots int    `json:"snapshots"`
	Layers    int    `json:"layers"`
	Objects   int    `json:"objects"`
	// ObjectBytes is the content carried; Bytes the whole stream.
	ObjectBytes int64 `json:"objectBytes"`
	Bytes       int64 `json:"bytes"`
	// Frozen is how long a running container was frozen (export).
	Frozen time.Duration `json:"frozenNs,omitempty"`
	// Incremental is set for an archive made with Since.
	Incremental bool `json:"incremental"`
	// Template is the template an import saved, when it had none of
	// that name.
	Template string `json:"template,omitempty"`
	// Dropped lists the settings an import or pull took out, as they
	// reach the host (see ImportOptions.TrustSettings).
	Dropped []string `json:"dropped,omitempty"`
}

// Export writes container name to w as an archive (see the package doc).
// Its differences are read as a snapshot is (the container frozen for it
// when it runs and o.Freeze is given). The store's shared lock is held
// throughout, so GC removes nothing the archive names while it is written.
func Export(ctx context.Context, m *container.Manager, name string, w io.Writer, o ExportOptions) (*Report, error) {
	st := m.Store()
	lock, err := st.Layers.LockShared()
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	ix, err := plan(ctx, m, name, o)
	if err != nil {
		return nil, fmt.Errorf("export %s: %w", name, err)
	}
	cw := &iocount.Writer{W: w}
	r := &Report{Name: name, Snapshots: len(ix.Snapshots), Layers: len(ix.Layers), Objects: len(ix.Objects),
		Frozen: ix.frozen, Incremental: ix.Since != nil}
	if err := write(ctx, st.Layers, ix.Index, cw, o.Progress); err != nil {
		return nil, fmt.Errorf("export %s: %w", name, err)
	}
	for _, obj := range ix.Objects {
		r.ObjectBytes += obj.Size
	}
	r.Bytes = cw.N
	return r, nil
}

// plan is an Index being made, with what export learned on the way.
type planned struct {
	*Index
	frozen time.Duration
}

// plan captures container name's differences and lists what the archive
// carries.
func plan(ctx context.Context, m *container.Manager, name string, o ExportOptions) (*planned, error) {
	st := m.Store()
	snaps, err := m.Snapshots(name)
	if err != nil {
		return nil, err
	}
	var have []digest.Digest // layers whose objects the target holds
	ix := &Index{Format: Format, Name: name, Snapshots: snaps, Created: time.Now().UTC()}
	if o.Since != "" {
		i := slices.IndexFunc(snaps, func(s *container.Snapshot) bool { return s.Name == o.Since })
		if i < 0 {
			return nil, fmt.Errorf("--since %s: %w", o.Since, container.ErrSnapshotNotFound)
		}
		ix.Since = &Base{Snapshot: o.Since, Layer: snaps[i].Layer}
		ix.Snapshots = snaps[i+1:]
		have = append(have, snaps[i].Layer)
		have = append(have, snaps[i].Container.Layers...)
	}
	state, err := m.Capture(ctx, name, container.SnapshotOptions{Freeze: o.Freeze})
	if err != nil {
		return nil, err
	}
	ix.Container, ix.State = state.Container, state.Layer
	// The template's layers: carried with WithTemplate, else the target's.
	tpl := slices.Clone(state.Container.Layers)
	for _, s := range ix.Snapshots {
		tpl = append(tpl, s.Container.Layers...)
	}
	if o.WithTemplate {
		ix.Template = templateOf(st, &state.Container)
		ix.Layers = append(ix.Layers, tpl...)
	} else {
		have = append(have, tpl...)
	}
	for _, s := range ix.Snapshots {
		ix.Layers = append(ix.Layers, s.Layer)
	}
	ix.Layers = dedup(append(ix.Layers, state.Layer))
	held, err := objectsOf(st.Layers, have)
	if err != nil {
		return nil, err
	}
	carried, err := objectsOf(st.Layers, ix.Layers)
	if err != nil {
		return nil, err
	}
	for d, size := range carried {
		if _, ok := held[d]; !ok {
			ix.Objects = append(ix.Objects, Object{Digest: d, Size: size})
		}
	}
	slices.SortFunc(ix.Objects, func(a, b Object) int { return compareDigests(a.Digest, b.Digest) })
	return &planned{Index: ix, frozen: state.Frozen}, nil
}

// templateOf returns the record of c's template as c has it: the stored
// template when its layers are still c's, else one made of c's record.
func templateOf(st *templates.Store, c *container.Container) *templates.Template {
	if t, err := st.Lookup(c.Template); err == nil && slices.Equal(t.Layers, c.Layers) {
		return t
	}
	r, _ := templates.ParseRef(c.Template)
	return &templates.Template{Ref: r, Layers: c.Layers, Config: c.Config, Created: c.Created}
}

// objectsOf returns the objects the layers ds use, with their sizes.
func objectsOf(s *layers.Store, ds []digest.Digest) (map[digest.Digest]int64, error) {
	out := map[digest.Digest]int64{}
	for _, d := range dedup(ds) {
		m, err := s.ReadLayer(d)
		if err != nil {
			return nil, err
		}
		for _, e := range m.Entries {
			if e.Type == layers.TypeReg && e.Digest != "" {
				out[e.Digest] = e.Size
			}
		}
	}
	return out, nil
}

func dedup(ds []digest.Digest) []digest.Digest {
	seen := map[digest.Digest]bool{}
	var out []digest.Digest
	for _, d := range ds {
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out
}

func compareDigests(a, b digest.Digest) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// write writes the archive of ix: the index, the layers' manifests as the
// store keeps them, and the objects (holes as holes), verified as they
// are read.
func write(ctx context.Context, s *layers.Store, ix *Index, w io.Writer, p layers.Progress) error {
	tw := s.NewTarWriter(w)
	b, err := json.MarshalIndent(ix, "", "  ")
	if err != nil {
		return err
	}
	if err := tw.WriteFile(indexName, b); err != nil {
		return err
	}
	for _, d := range ix.Layers {
		z, err := os.ReadFile(filepath.Join(s.LayerDir(d), "manifest"))
		if err != nil {
			return fmt.Errorf("layer %s: %w", d, err)
		}
		if err := tw.WriteFile(layerPrefix+d.Encoded(), z); err != nil {
			return err
		}
	}
	var total int64
	for _, o := range ix.Objects {
		total += o.Size
	}
	if p != nil {
		p.Total(total)
	}
	for _, o := range ix.Objects {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := tw.WriteObject(objectPrefix+o.Digest.Encoded(), o.Digest, o.Size); err != nil {
			return fmt.Errorf("object %s: %w", o.Digest, err)
		}
		if p != nil {
			p.Advance(o.Size)
		}
	}
	return tw.Close()
}

// The names of an archive's entries.
const (
	indexName    = "index.json"
	layerPrefix  = "layers/"
	objectPrefix = "objects/"
)
