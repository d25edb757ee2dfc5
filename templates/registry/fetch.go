package registry

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"sync"
	"time"

	"github.com/acetate/acetate/layers"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
)

// Fetched objects are committed whenever commitBytes have been staged, every
// commitEvery while a pull runs (a stalled transfer included), and when a
// pull is interrupted (see interrupted), so that a pull killed with -9
// loses at most what it staged in the last commitEvery.
var (
	commitBytes int64 = 32 << 20
	commitEvery       = 2 * time.Second
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

// fetch fetches the packs, staging each object as it arrives (checked
// against its name), and commits the objects as it goes.
func (p *puller) fetch(ctx context.Context, todo []pack) error {
	var total int64
	for _, f := range todo {
		total += f.size
	}
	p.progress.Total(total)
	objs := p.st.Layers.NewObjects()
	ticking := make(chan struct{})
	defer close(ticking)
	go commitPeriodically(objs, ticking)
	for _, f := range todo {
		err := ctx.Err()
		if err == nil {
			err = p.copyPack(f, objs)
		}
		if err != nil {
			return p.stop(objs, fmt.Errorf("%s: pack %s: %w", p.what, f.digest, err))
		}
		if objs.Staged() >= commitBytes {
			if err := objs.Commit(); err != nil {
				return fmt.Errorf("%s: %w", p.what, err)
			}
		}
	}
	if err := objs.Commit(); err != nil {
		return fmt.Errorf("%s: %w", p.what, err)
	}
	return nil
}

// commitPeriodically commits objs every commitEvery until stop is closed. An
// error leaves the objects to the next commit, whose caller sees it.
func commitPeriodically(objs *layers.Objects, stop <-chan struct{}) {
	tick := time.NewTicker(commitEvery)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			if objs.Staged() > 0 {
				objs.Commit() //nolint:errcheck // the final commit reports
			}
		}
	}
}

// stop ends a pull that failed with err. When the transfer was interrupted,
// the objects staged so far (each checked against its name) are committed
// for the next try; any other failure (a blob that fails its digest or
// size, a pack that is not one) drops them, leaving the store as it was.
func (p *puller) stop(objs *layers.Objects, err error) error {
	if !interrupted(err) {
		objs.Abort()
		return err
	}
	if cerr := objs.Commit(); cerr != nil {
		return fmt.Errorf("%w (and keeping the objects fetched: %v)", err, cerr)
	}
	return err
}

// interrupted reports whether err ended a transfer rather than judged its
// content: a stall, a cancelled pull (SIGTERM), a lost connection, or an
// error status from the registry.
func interrupted(err error) bool {
	var ne net.Error
	var te *transport.Error
	return errors.Is(err, ErrStalled) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &ne) || errors.As(err, &te)
}

type noProgress struct{}

func (noProgress) Total(int64)   {}
func (noProgress) Advance(int64) {}

// Compiled on first use: package init runs at every container start.
var hexName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9a-f]{64}$`) })

// copyPack stages the objects of pack f, and reads the blob to its end so
// that its digest and size are checked; a registry sending more than the
// pack's declared size is cut off there. A blob that fails that check is
// reported as such even when its bytes also fail to decompress.
func (p *puller) copyPack(f pack, objs *layers.Objects) error {
	rc, err := p.open(f.digest)
	if err != nil {
		return err
	}
	defer rc.Close()
	r := p.verified(rc, f.digest, f.size)
	err = stageObjects(r, objs)
	if _, derr := io.Copy(io.Discard, r); derr != nil {
		return derr
	}
	return err
}

// stageObjects stages the entries of a pack stream, objects named by their
// digests' hex, skipping those the store has.
func stageObjects(r io.Reader, objs *layers.Objects) error {
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
			return fmt.Errorf("entry %q is not an object named by its digest: %w", hdr.Name, layers.ErrCorrupt)
		}
		if err := objs.Put(digest.NewDigestFromEncoded(digest.SHA256, hdr.Name), hdr.Size, tr); err != nil {
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
