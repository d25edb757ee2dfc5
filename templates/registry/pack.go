package registry

import (
	"archive/tar"
	"fmt"
	"io"
	"time"

	"github.com/acetate/acetate/layers"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
)

// BigObject is the size from which an object travels in a pack of its own.
const BigObject = 32 << 10

// object is one file object a layer uses.
type object struct {
	digest digest.Digest
	size   int64
}

// pack names a pack blob: its digest and size.
type pack struct {
	digest digest.Digest
	size   int64
}

// partition cuts the objects of layer m, each once, in manifest order, into
// packs: an object of BigObject bytes or more alone, smaller ones in runs
// that end after every object whose digest starts with "0" (one in sixteen
// on average). Every cut depends only on the object beside it, so a change
// to a few files changes only the packs around them. Push and pull compute
// the same partition from the same manifest.
func partition(m *layers.Manifest) [][]object {
	var packs [][]object
	var run []object
	seen := map[digest.Digest]bool{}
	for i := range m.Entries {
		e := &m.Entries[i]
		if e.Type != layers.TypeReg || seen[e.Digest] {
			continue
		}
		seen[e.Digest] = true
		o := object{digest: e.Digest, size: e.Size}
		if o.size >= BigObject {
			if len(run) > 0 {
				packs, run = append(packs, run), nil
			}
			packs = append(packs, []object{o})
			continue
		}
		run = append(run, o)
		if o.digest.Encoded()[0] == '0' {
			packs, run = append(packs, run), nil
		}
	}
	if len(run) > 0 {
		packs = append(packs, run)
	}
	return packs
}

// writePack writes the objects as a pack: a zstd tar of files named by the
// digests' hex. The output depends only on the objects, so the same pack
// always has the same digest.
func writePack(s *layers.Store, objs []object, w io.Writer) error {
	zw, err := zstd.NewWriter(w, zstd.WithEncoderConcurrency(1))
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	for _, o := range objs {
		hdr := &tar.Header{Name: o.digest.Encoded(), Typeflag: tar.TypeReg, Mode: 0o444, Size: o.size, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if err := copyObject(s, o, tw); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

// copyObject copies a verified object to w.
func copyObject(s *layers.Store, o object, w io.Writer) error {
	r, err := s.OpenObject(o.digest, o.size)
	if err != nil {
		return err
	}
	defer r.Close()
	if _, err := io.Copy(w, r); err != nil {
		return fmt.Errorf("object %s: %w", o.digest, err)
	}
	return nil
}

// describePack generates a pack to learn its digest and size.
func describePack(s *layers.Store, objs []object) (pack, error) {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writePack(s, objs, pw)) }()
	h, n, err := v1.SHA256(pr)
	pr.Close()
	if err != nil {
		return pack{}, err
	}
	return pack{digest: digest.Digest(h.String()), size: n}, nil
}
