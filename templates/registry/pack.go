package registry

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"time"

	"github.com/acetate/acetate/layers"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
)

// BigObject is the size from which an object is a blob of its own.
const BigObject = 32 << 10

// object is one file object a layer uses.
type object struct {
	digest digest.Digest
	size   int64
}

// split is how a layer's objects travel: big ones alone, small ones in packs.
type split struct {
	big   []object
	packs [][]object
}

// partition splits the objects of layer m, each once, in manifest order:
// objects of BigObject bytes or more alone, the others into packs cut after
// every object whose digest starts with "0" (one in sixteen on average).
// Push and pull compute the same partition from the same manifest.
func partition(m *layers.Manifest) split {
	var sp split
	var pack []object
	seen := map[digest.Digest]bool{}
	for i := range m.Entries {
		e := &m.Entries[i]
		if e.Type != layers.TypeReg || seen[e.Digest] {
			continue
		}
		seen[e.Digest] = true
		o := object{digest: e.Digest, size: e.Size}
		if o.size >= BigObject {
			sp.big = append(sp.big, o)
			continue
		}
		pack = append(pack, o)
		if o.digest.Encoded()[0] == '0' {
			sp.packs = append(sp.packs, pack)
			pack = nil
		}
	}
	if len(pack) > 0 {
		sp.packs = append(sp.packs, pack)
	}
	return sp
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
		hdr := &tar.Header{Name: o.digest.Encoded(), Typeflag: tar.TypeReg, Mode: 0o444, Size: o.size, ModTime: time.Unix(0, 0), Format: tar.FormatUSTAR}
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

// packBytes builds a pack in memory.
func packBytes(s *layers.Store, objs []object) ([]byte, error) {
	var b bytes.Buffer
	err := writePack(s, objs, &b)
	return b.Bytes(), err
}
