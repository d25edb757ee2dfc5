package registry

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sync"

	"github.com/acetate/acetate/layers"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
)

// Objects are committed in batches of at most this many bytes or packs, so
// an interrupted pull loses at most one batch.
var (
	batchBytes int64 = 32 << 20
	batchPacks       = 256
)

// plan adds to planned the objects of layer m the store lacks, and returns
// the packs that hold them: a pack when any of its objects is missing.
func (p *puller) plan(al artifactLayer, m *layers.Manifest, packs []pack, planned map[digest.Digest]bool) ([]pack, error) {
	parts := partition(m)
	if len(parts) != len(packs) {
		return nil, fmt.Errorf("%s: layer %s: the artifact lists %d packs, the manifest makes %d", p.what, al.Digest, len(packs), len(parts))
	}
	var out []pack
	for i, objs := range parts {
		need := false
		for _, o := range objs {
			need = need || (!planned[o.digest] && !p.st.Layers.HasObject(o.digest))
		}
		if !need {
			continue
		}
		out = append(out, packs[i])
		for _, o := range objs {
			planned[o.digest] = true
		}
	}
	return out, nil
}

// fetch fetches the packs in batches and commits each batch's objects.
func (p *puller) fetch(ctx context.Context, todo []pack) error {
	var total int64
	for _, f := range todo {
		total += f.size
	}
	p.progress.Total(total)
	for len(todo) > 0 {
		n, size := 0, int64(0)
		for n < len(todo) && n < batchPacks && (n == 0 || size+todo[n].size <= batchBytes) {
			size += todo[n].size
			n++
		}
		if err := p.fetchBatch(ctx, todo[:n]); err != nil {
			return err
		}
		todo = todo[n:]
	}
	return nil
}

type noProgress struct{}

func (noProgress) Total(int64)   {}
func (noProgress) Advance(int64) {}

// fetchBatch streams the objects of the packs as one tar stream into the
// store's staging, checks that every object hashes to its name, and commits.
func (p *puller) fetchBatch(ctx context.Context, batch []pack) error {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(p.writeBatch(batch, pw)) }()
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
	if err := tree.CommitObjects(); err != nil {
		return fmt.Errorf("%s: %w", p.what, err)
	}
	return nil
}

// Compiled on first use: package init runs at every container start.
var hexName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9a-f]{64}$`) })

// writeBatch writes every object of the packs, once each, as a tar stream
// of files named by their digests' hex.
func (p *puller) writeBatch(batch []pack, w io.Writer) error {
	tw := tar.NewWriter(w)
	written := map[string]bool{}
	for _, f := range batch {
		if err := p.copyPack(f, tw, written); err != nil {
			return fmt.Errorf("pack %s: %w", f.digest, err)
		}
	}
	return tw.Close()
}

// copyPack copies the objects of pack f into tw, and reads the blob to its
// end so that its digest and size are checked; a registry sending more than
// the pack's declared size is cut off there. A blob that fails that check
// is reported as such even when its bytes also fail to decompress.
func (p *puller) copyPack(f pack, tw *tar.Writer, written map[string]bool) error {
	rc, err := p.open(f.digest)
	if err != nil {
		return err
	}
	defer rc.Close()
	r := p.verified(rc, f.digest, f.size)
	err = copyObjects(r, tw, written)
	if _, derr := io.Copy(io.Discard, r); derr != nil {
		return derr
	}
	return err
}

// copyObjects copies the entries of a pack stream into tw, skipping those
// already written.
func copyObjects(r io.Reader, tw *tar.Writer, written map[string]bool) error {
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
			return err
		}
		if hdr.Typeflag != tar.TypeReg || !hexName().MatchString(hdr.Name) {
			return fmt.Errorf("entry %q is not an object named by its digest", hdr.Name)
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
