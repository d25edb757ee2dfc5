package archive

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/acetate/acetate/fs/container"
	"github.com/acetate/acetate/internal/iocount"
	"github.com/acetate/acetate/layers"
	"github.com/acetate/acetate/templates"
	"github.com/opencontainers/go-digest"
)

// ErrBadArchive is wrapped by the errors about an archive that is corrupt,
// cut short, or not an archive of this format.
var ErrBadArchive = errors.New("bad container archive")

// Limits on what an archive's index and manifests may take in memory.
const (
	maxIndex    = 64 << 20
	maxManifest = 1 << 30
)

// ImportOptions say how an archive is imported.
type ImportOptions struct {
	// Name is the container to make (or, for an incremental archive, to
	// bring up to date); empty for the name in the archive.
	Name string
	// Progress reports the bytes of objects read.
	Progress layers.Progress
	// TrustSettings keeps the settings that reach the host (bind mounts,
	// seccomp, host network, published ports), which import otherwise
	// takes out (see Report.Dropped).
	TrustSettings bool
}

// Import reads an archive from r (see the package doc) into m's store: a
// full archive makes a new container (ErrExists when the name is taken),
// an incremental one brings the stopped container that has its base
// snapshot up to date. Nothing changes unless the whole archive is read
// and checked; an archive that is corrupt or cut short fails with an error
// wrapping ErrBadArchive.
func Import(ctx context.Context, m *container.Manager, r io.Reader, o ImportOptions) (*Report, error) {
	st := m.Store()
	lock, err := st.Layers.LockShared()
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	objs := st.Layers.NewObjects()
	committed := false
	defer func() {
		if !committed {
			objs.Abort()
		}
	}()
	cr := &iocount.Reader{R: r}
	in, err := read(ctx, cr, objs, o.Progress)
	if err != nil {
		return nil, err
	}
	ix := in.ix
	name := ix.Name
	if o.Name != "" {
		name = o.Name
	}
	if err := container.ValidateName(name); err != nil {
		return nil, err
	}
	if err := in.check(st, objs); err != nil {
		return nil, err
	}
	if err := prepare(m, name, ix); err != nil {
		return nil, err
	}
	if err := objs.Commit(); err != nil {
		return nil, err
	}
	committed = true
	for _, d := range ix.Layers {
		if got, err := st.Layers.WriteLayer(in.manifests[d]); err != nil || got != d {
			return nil, fmt.Errorf("write layer %s: %v (wrote %s)", d, err, got)
		}
	}
	rep := &Report{Name: name, Snapshots: len(ix.Snapshots), Layers: len(ix.Layers), Objects: len(ix.Objects),
		Incremental: ix.Since != nil}
	for _, obj := range ix.Objects {
		rep.ObjectBytes += obj.Size
	}
	if t := ix.Template; t != nil {
		if _, err := st.Get(t.Ref); errors.Is(err, templates.ErrNotFound) {
			if err := st.Save(t); err != nil {
				return nil, err
			}
			rep.Template = t.Ref.String()
		}
	}
	rec := ix.Container
	rec.Name = name
	for _, s := range ix.Snapshots {
		s.Container.Name = name
	}
	rep.Dropped = confineAll(o.TrustSettings, &rec, ix.Snapshots)
	if ix.Since != nil {
		err = m.Replace(ctx, &rec, ix.State, ix.Snapshots, nil)
	} else {
		err = m.Adopt(ctx, &rec, ix.State, ix.Snapshots, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", name, err)
	}
	rep.Bytes = cr.N
	return rep, nil
}

// prepare checks that the archive applies to container name: a full one
// to a name not taken, an incremental one to a stopped container that has
// its base snapshot (and none of the snapshots it brings).
func prepare(m *container.Manager, name string, ix *Index) error {
	_, err := m.Get(name)
	if ix.Since == nil {
		if err == nil {
			return fmt.Errorf("import %s: %w (remove it, or import under another NAME)", name, container.ErrExists)
		}
		if errors.Is(err, container.ErrNotFound) {
			return nil
		}
		return err
	}
	if err != nil {
		return fmt.Errorf("incremental archive (since snapshot %s): %w: import the chain in order", ix.Since.Snapshot, err)
	}
	base, err := m.GetSnapshot(name, ix.Since.Snapshot)
	if err != nil {
		return fmt.Errorf("incremental archive: %w: import the archive that carries snapshot %s first", err, ix.Since.Snapshot)
	}
	if base.Layer != ix.Since.Layer {
		return fmt.Errorf("incremental archive: %s's snapshot %s is not the one the archive continues from (layer %s, not %s)",
			name, ix.Since.Snapshot, base.Layer, ix.Since.Layer)
	}
	for _, s := range ix.Snapshots {
		if _, err := m.GetSnapshot(name, s.Name); err == nil {
			return fmt.Errorf("incremental archive: %s has snapshot %s already: %w", name, s.Name, container.ErrSnapshotExists)
		}
	}
	return nil
}

// archiveIn is an archive read whole.
type archiveIn struct {
	ix        *Index
	manifests map[digest.Digest]*layers.Manifest
}

// read reads the whole archive: the index, then every entry the index
// lists, the objects staged in objs.
func read(ctx context.Context, r io.Reader, objs *layers.Objects, p layers.Progress) (*archiveIn, error) {
	tr := tar.NewReader(r)
	hdr, err := tr.Next()
	if err != nil {
		return nil, badArchive("no index: %v", err)
	}
	if hdr.Name != indexName || hdr.Typeflag != tar.TypeReg || hdr.Size > maxIndex {
		return nil, badArchive("the first entry is %q, not the index", hdr.Name)
	}
	b, err := io.ReadAll(tr)
	if err != nil {
		return nil, badArchive("index: %v", err)
	}
	var ix Index
	if err := json.Unmarshal(b, &ix); err != nil {
		return nil, badArchive("index: %v", err)
	}
	if err := ix.validate(); err != nil {
		return nil, err
	}
	in := &archiveIn{ix: &ix, manifests: map[digest.Digest]*layers.Manifest{}}
	sizes := map[digest.Digest]int64{}
	var total int64
	for _, o := range ix.Objects {
		sizes[o.Digest] = o.Size
		total += o.Size
	}
	if p != nil {
		p.Total(total)
	}
	wantLayers := map[digest.Digest]bool{}
	for _, d := range ix.Layers {
		wantLayers[d] = true
	}
	seen := map[digest.Digest]bool{}
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, badArchive("%v", err)
		}
		d, isLayer, err := entryDigest(hdr)
		if err != nil {
			return nil, err
		}
		if seen[d] {
			return nil, badArchive("entry %q twice", hdr.Name)
		}
		seen[d] = true
		if isLayer {
			if !wantLayers[d] || hdr.Size > maxManifest {
				return nil, badArchive("entry %q is not in the index", hdr.Name)
			}
			if in.manifests[d], err = readManifest(tr, d); err != nil {
				return nil, err
			}
			continue
		}
		size, ok := sizes[d]
		if !ok || hdr.Size != size {
			return nil, badArchive("entry %q is not in the index (or not of its size)", hdr.Name)
		}
		if err := objs.Put(d, size, tr); err != nil {
			return nil, badArchive("%s: %v", hdr.Name, err)
		}
		if p != nil {
			p.Advance(size)
		}
	}
	missing := 0
	for _, d := range ix.Layers {
		if !seen[d] {
			missing++
		}
	}
	for _, o := range ix.Objects {
		if !seen[o.Digest] {
			missing++
		}
	}
	if missing > 0 {
		return nil, badArchive("cut short: %d of the %d entries the index lists are missing", missing, len(ix.Layers)+len(ix.Objects))
	}
	return in, nil
}

// entryDigest parses an entry's name: layers/<hex> or objects/<hex>.
func entryDigest(hdr *tar.Header) (digest.Digest, bool, error) {
	if hdr.Typeflag != tar.TypeReg {
		return "", false, badArchive("entry %q is not a regular file", hdr.Name)
	}
	hex, isLayer := strings.CutPrefix(hdr.Name, layerPrefix)
	if !isLayer {
		var ok bool
		if hex, ok = strings.CutPrefix(hdr.Name, objectPrefix); !ok {
			return "", false, badArchive("unexpected entry %q", hdr.Name)
		}
	}
	d := digest.NewDigestFromEncoded(digest.SHA256, hex)
	if err := d.Validate(); err != nil {
		return "", false, badArchive("entry %q: %v", hdr.Name, err)
	}
	return d, isLayer, nil
}

// readManifest reads a compressed manifest and verifies it against d as
// the store verifies its own.
func readManifest(r io.Reader, d digest.Digest) (*layers.Manifest, error) {
	z, err := io.ReadAll(r)
	if err != nil {
		return nil, badArchive("layer %s: %v", d, err)
	}
	raw, err := layers.Decompress(z)
	if err != nil {
		return nil, badArchive("layer %s: %v", d, err)
	}
	if got := digest.FromBytes(raw); got != d {
		return nil, badArchive("layer %s: manifest hashes to %s", d, got)
	}
	m, err := layers.DecodeManifest(raw)
	if err != nil {
		return nil, badArchive("layer %s: %v", d, err)
	}
	return m, nil
}

// validate checks the index on its own.
func (ix *Index) validate() error {
	if ix.Format != Format {
		return badArchive("format %q, not %q", ix.Format, Format)
	}
	if err := container.ValidateName(ix.Name); err != nil {
		return badArchive("%v", err)
	}
	ds := append(slices.Clone(ix.Layers), ix.State)
	ds = append(ds, ix.Container.Layers...)
	for _, s := range ix.Snapshots {
		if s == nil || container.ValidateName(s.Name) != nil {
			return badArchive("a snapshot without a valid name")
		}
		ds = append(append(ds, s.Layer), s.Container.Layers...)
	}
	if ix.Since != nil {
		if container.ValidateName(ix.Since.Snapshot) != nil {
			return badArchive("since: bad snapshot name %q", ix.Since.Snapshot)
		}
		ds = append(ds, ix.Since.Layer)
	}
	for _, o := range ix.Objects {
		if o.Size < 0 {
			return badArchive("object %s of size %d", o.Digest, o.Size)
		}
		ds = append(ds, o.Digest)
	}
	for _, d := range ds {
		if err := d.Validate(); err != nil {
			return badArchive("digest %q: %v", d, err)
		}
	}
	if !slices.Contains(ix.Layers, ix.State) {
		return badArchive("the state layer %s is not in the archive", ix.State)
	}
	return nil
}

// check makes sure everything the archive's container and snapshots use
// is in the archive or the store: every layer, and every object of the
// layers the archive carries.
func (in *archiveIn) check(st *templates.Store, objs *layers.Objects) error {
	need := slices.Clone(in.ix.Container.Layers)
	for _, s := range in.ix.Snapshots {
		need = append(append(need, s.Layer), s.Container.Layers...)
	}
	var lacking []string
	for _, d := range dedup(need) {
		if _, ok := in.manifests[d]; ok {
			continue
		}
		if _, err := st.Layers.ReadLayer(d); err != nil {
			lacking = append(lacking, d.Encoded()[:12])
		}
	}
	if len(lacking) > 0 {
		return fmt.Errorf("the archive's container needs layers this store lacks (%s, of template %s): import an archive made with --with-template, or pull the template first",
			strings.Join(lacking, ", "), in.ix.Container.Template)
	}
	for d, m := range in.manifests {
		for _, e := range m.Entries {
			if e.Type == layers.TypeReg && e.Digest != "" && !objs.Has(e.Digest) {
				return fmt.Errorf("layer %s uses object %s, which neither the archive nor this store has: %w (an incremental archive needs the one before it)",
					d.Encoded()[:12], e.Digest.Encoded()[:12], ErrBadArchive)
			}
		}
	}
	return nil
}

func badArchive(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrBadArchive, fmt.Sprintf(format, a...))
}
