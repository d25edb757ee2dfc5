package oci

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/acetate/acetate/internal/iocount"
	"github.com/acetate/acetate/layers"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
)

// layer is one acetate layer as an OCI layer (a v1.Layer): a gzip tar
// stream, generated from the store on each read and identical every time.
type layer struct {
	s      *layers.Store
	m      *layers.Manifest
	digest v1.Hash
	diffID v1.Hash
	size   int64
}

var _ v1.Layer = (*layer)(nil)

// newLayer describes layer m of store s: it generates the layer once to
// learn its digests. When blobDir is not empty, that pass also writes the
// compressed layer there, named by its digest's hex.
func newLayer(ctx context.Context, s *layers.Store, m *layers.Manifest, blobDir string, p layers.Progress) (*layer, error) {
	l := &layer{s: s, m: m}
	if blobDir == "" {
		return l, l.describe(ctx, io.Discard, p)
	}
	f, err := os.CreateTemp(blobDir, ".layer-")
	if err != nil {
		return nil, fmt.Errorf("write layer blob: %w", err)
	}
	defer os.Remove(f.Name())
	err = l.describe(ctx, f, p)
	if err == nil {
		err = f.Chmod(0o644) // as go-containerregistry writes the other blobs
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(blobDir, l.digest.Hex))
	}
	if err != nil {
		return nil, fmt.Errorf("write layer blob: %w", err)
	}
	return l, nil
}

// describe generates the layer, copying the compressed bytes to sink, and
// records its digests and size.
func (l *layer) describe(ctx context.Context, sink io.Writer, p layers.Progress) error {
	dh, zh := sha256.New(), sha256.New()
	cw := &iocount.Writer{W: io.MultiWriter(zh, sink)}
	zw, _ := gzip.NewWriterLevel(cw, gzip.DefaultCompression)
	if err := l.writeTar(ctx, io.MultiWriter(dh, zw), p); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	l.diffID = v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", dh.Sum(nil))}
	l.digest = v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", zh.Sum(nil))}
	l.size = cw.N
	return nil
}

// writeTar writes the layer as an OCI layer tar: whiteouts as empty
// ".wh.NAME" files and opaque directories as ".wh..wh..opq" markers first
// (so they can only hide what lower layers hold), then every other entry.
func (l *layer) writeTar(ctx context.Context, w io.Writer, p layers.Progress) error {
	tw := tar.NewWriter(w)
	var rest []layers.Entry
	for i := range l.m.Entries {
		e := &l.m.Entries[i]
		var marker string
		switch {
		case e.Type == layers.TypeWhiteout:
			marker = path.Join(layers.Parent(e.Path), ".wh."+path.Base(e.Path))
		case e.Opaque:
			marker = path.Join(e.Path, ".wh..wh..opq")
		}
		if marker != "" {
			hdr := &tar.Header{Name: marker[1:], Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
			if err := tw.WriteHeader(hdr); err != nil {
				return fmt.Errorf("layer tar: %w", err)
			}
		}
		if e.Type != layers.TypeWhiteout {
			rest = append(rest, *e)
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("layer tar: %w", err)
	}
	return l.s.ExportTar(ctx, rest, w, p)
}

// Digest is the sha256 of the compressed layer.
func (l *layer) Digest() (v1.Hash, error) { return l.digest, nil }

// DiffID is the sha256 of the uncompressed tar stream.
func (l *layer) DiffID() (v1.Hash, error) { return l.diffID, nil }

// Size is the compressed size.
func (l *layer) Size() (int64, error) { return l.size, nil }

// MediaType is the OCI gzip layer type.
func (l *layer) MediaType() (types.MediaType, error) { return types.OCILayer, nil }

// Compressed generates the gzip tar stream again.
func (l *layer) Compressed() (io.ReadCloser, error) {
	return l.pipe(func(w io.Writer) error {
		zw, _ := gzip.NewWriterLevel(w, gzip.DefaultCompression)
		if err := l.writeTar(context.Background(), zw, nil); err != nil {
			return err
		}
		return zw.Close()
	}), nil
}

// Uncompressed generates the tar stream again.
func (l *layer) Uncompressed() (io.ReadCloser, error) {
	return l.pipe(func(w io.Writer) error { return l.writeTar(context.Background(), w, nil) }), nil
}

// pipe runs write in a goroutine and returns its output as a reader.
// Closing the reader early stops the writer.
func (l *layer) pipe(write func(io.Writer) error) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(write(pw)) }()
	return pr
}
