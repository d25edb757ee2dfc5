package registry

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"

	"github.com/acetate/acetate/layers"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
)

// Objects are committed in batches of at most this many bytes or blobs, so
// an interrupted pull loses at most one batch.
var (
	batchBytes int64 = 32 << 20
	batchBlobs       = 256
)

// fetch is one blob to fetch: a pack of small objects or one big object.
type fetch struct {
	blob digest.Digest
	pack bool
	size int64
}

// objectsOnly is the layer a batch of fetched objects is committed with:
// layers.Tree.Commit always writes a layer, and this one (only a root
// directory, the same for every batch) is referenced by no template, so GC
// removes it.
var objectsOnly = &layers.Manifest{Entries: []layers.Entry{{Path: "/", Type: layers.TypeDir, Mode: 0o755}}}

// plan adds to planned the objects of layer m the store lacks, and returns
// the blobs that hold them: a pack when any of its objects is missing.
func (p *puller) plan(al artifactLayer, m *layers.Manifest, planned map[digest.Digest]bool) ([]fetch, error) {
	sp := partition(m)
	if len(sp.packs) != len(al.Packs) {
		return nil, fmt.Errorf("%s: layer %s: the artifact lists %d packs, the manifest makes %d", p.what, al.Digest, len(al.Packs), len(sp.packs))
	}
	missing := func(o object) bool { return !planned[o.digest] && !p.st.Layers.HasObject(o.digest) }
	var out []fetch
	add := func(f fetch) error {
		size, ok := p.sizes[f.blob]
		if !ok {
			return fmt.Errorf("%s: layer %s: blob %s is not in the artifact", p.what, al.Digest, f.blob)
		}
		f.size = size
		out = append(out, f)
		return nil
	}
	for i, objs := range sp.packs {
		need := false
		for _, o := range objs {
			need = need || missing(o)
		}
		if !need {
			continue
		}
		if err := add(fetch{blob: al.Packs[i], pack: true}); err != nil {
			return nil, err
		}
		for _, o := range objs {
			planned[o.digest] = true
		}
	}
	for _, o := range sp.big {
		if !missing(o) {
			continue
		}
		if err := add(fetch{blob: o.digest}); err != nil {
			return nil, err
		}
		planned[o.digest] = true
	}
	return out, nil
}

// fetch fetches the blobs in batches and commits each batch's objects.
func (p *puller) fetch(ctx context.Context, todo []fetch) error {
	prog := p.progress
	if prog == nil {
		prog = noProgress{}
	}
	var total int64
	for _, f := range todo {
		total += f.size
	}
	prog.Total(total)
	for len(todo) > 0 {
		n, size := 0, int64(0)
		for n < len(todo) && n < batchBlobs && (n == 0 || size+todo[n].size <= batchBytes) {
			size += todo[n].size
			n++
		}
		if err := p.fetchBatch(ctx, todo[:n], prog); err != nil {
			return err
		}
		todo = todo[n:]
	}
	return nil
}

type noProgress struct{}

func (noProgress) Total(int64)   {}
func (noProgress) Advance(int64) {}

// fetchBatch streams the objects of the blobs as one tar stream into the
// store's staging, checks that every object hashes to its name, and commits.
func (p *puller) fetchBatch(ctx context.Context, batch []fetch, prog layers.Progress) error {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(p.writeBatch(batch, pw, prog)) }()
	tree, err := p.st.Layers.ReadTar(ctx, pr, layers.TarOptions{}, nil)
	pr.CloseWithError(errors.New("batch abandoned"))
	if err != nil {
		return fmt.Errorf("%s: %w", p.what, err)
	}
	for _, e := range tree.Manifest.Entries {
		if e.Path != "/" && (e.Type != layers.TypeReg || "/"+e.Digest.Encoded() != e.Path) {
			tree.Abort()
			return fmt.Errorf("%s: object %s hashes to %s: %w", p.what, e.Path[1:], e.Digest, layers.ErrCorrupt)
		}
	}
	if _, err := tree.Commit(objectsOnly); err != nil {
		return fmt.Errorf("%s: %w", p.what, err)
	}
	return nil
}

var hexName = regexp.MustCompile(`^[0-9a-f]{64}$`)

// writeBatch writes every object of the blobs, once each, as a tar stream
// of files named by their digests' hex.
func (p *puller) writeBatch(batch []fetch, w io.Writer, prog layers.Progress) error {
	tw := tar.NewWriter(w)
	written := map[string]bool{}
	for _, f := range batch {
		if err := p.copyBlob(f, tw, written, prog); err != nil {
			return err
		}
	}
	return tw.Close()
}

// copyBlob copies the objects of one blob into tw and reads the blob to its
// end, so that the client's digest check runs.
func (p *puller) copyBlob(f fetch, tw *tar.Writer, written map[string]bool, prog layers.Progress) error {
	rc, err := p.open(f.blob)
	if err != nil {
		return err
	}
	defer rc.Close()
	r := &countingReader{r: rc, p: prog}
	if f.pack {
		err = copyPack(r, tw, written)
	} else {
		err = copyObjectBlob(r, f, tw, written)
	}
	if err == nil {
		_, err = io.Copy(io.Discard, r)
	}
	if err != nil {
		return fmt.Errorf("blob %s: %w", f.blob, err)
	}
	return nil
}

func copyObjectBlob(r io.Reader, f fetch, tw *tar.Writer, written map[string]bool) error {
	name := f.blob.Encoded()
	if written[name] {
		return nil
	}
	written[name] = true
	if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o444, Size: f.size}); err != nil {
		return err
	}
	_, err := io.CopyN(tw, r, f.size)
	return err
}

func copyPack(r io.Reader, tw *tar.Writer, written map[string]bool) error {
	zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
	if err != nil {
		return err
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("pack: %w", err)
		}
		if hdr.Typeflag != tar.TypeReg || !hexName.MatchString(hdr.Name) || hdr.Size >= BigObject {
			return fmt.Errorf("pack entry %q is not a small object named by its digest", hdr.Name)
		}
		if written[hdr.Name] {
			continue
		}
		written[hdr.Name] = true
		if err := tw.WriteHeader(&tar.Header{Name: hdr.Name, Typeflag: tar.TypeReg, Mode: 0o444, Size: hdr.Size}); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
}

// countingReader reports bytes received as progress.
type countingReader struct {
	r io.Reader
	p layers.Progress
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.p.Advance(int64(n))
	return n, err
}
