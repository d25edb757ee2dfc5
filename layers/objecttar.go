package layers

import (
	"archive/tar"
	"io"
	"time"

	"github.com/opencontainers/go-digest"
)

// TarWriter writes a tar stream of files and objects, for an archive that
// carries objects by name (a container archive): an object with holes is
// written as a GNU sparse entry holding its data only (as
// ExportSparseTar writes files), so a sparse file of any size costs its
// data; archive/tar reads such an entry back as the object's whole
// content.
type TarWriter struct {
	s *Store
	x *tarExporter
}

// NewTarWriter starts a tar stream on w.
func (s *Store) NewTarWriter(w io.Writer) *TarWriter {
	return &TarWriter{s: s, x: &tarExporter{w: w, tw: tar.NewWriter(w), written: map[string]bool{}, sparse: true, buf: make([]byte, 1<<20)}}
}

// WriteFile writes a regular file entry name (mode 0644, time 0) holding
// data.
func (t *TarWriter) WriteFile(name string, data []byte) error {
	hdr := &tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data)), ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
	if err := t.x.tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err := t.x.tw.Write(data)
	return err
}

// WriteObject writes object d of size bytes as the regular file entry
// name, holes as holes. A corrupt object fails it.
func (t *TarWriter) WriteObject(name string, d digest.Digest, size int64) error {
	return t.s.writeTarEntry(t.x, &Entry{Path: "/" + name, Type: TypeReg, Mode: 0o644, Size: size, Digest: d}, noProgress{})
}

// Close ends the stream.
func (t *TarWriter) Close() error { return t.x.tw.Close() }
