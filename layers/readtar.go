package layers

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
)

// TarOptions changes how a tar stream is read.
type TarOptions struct {
	// OCIWhiteouts maps OCI layer whiteouts (".wh.NAME" files and
	// ".wh..wh..opq" markers) to whiteout entries and opaque directories,
	// instead of keeping them as plain files.
	OCIWhiteouts bool
	// MaxHoles bounds the zeros that sparse entries may add to a stream
	// (their holes: content beyond the bytes the stream carries), each
	// of which must be hashed; 0 means DefaultMaxTarHoles, and a negative
	// value no limit.
	MaxHoles int64
}

// DefaultMaxTarHoles is how many bytes of holes the sparse entries of a tar
// stream may declare in all, unless TarOptions.MaxHoles says otherwise.
// Every byte of a hole is hashed (an object is named by the sha256 of its
// dense content), at about 2 GB/s: a stream of a kilobyte declaring a
// terabyte of holes is refused within seconds, not after minutes.
const DefaultMaxTarHoles = 16 << 30

// ErrTooSparse is wrapped by the error about a tar stream whose sparse
// entries declare more holes than allowed.
var ErrTooSparse = errors.New("sparse entries declare more holes than allowed")

// ReadTar reads a tar stream (plain, gzip, bzip2 or zstd, detected from its
// first bytes) into the store, and the compressed stream to its end, so that
// its checksum is verified. Nothing is extracted: entries become manifest
// entries and file content becomes staged objects, so no entry can write
// outside the store. The stream is refused, with an error naming the entry,
// when an entry has an absolute path or "..", passes through a symlink or a
// non-directory, repeats a path, links to a file not earlier in the stream,
// has a type a tree cannot hold, when the stream is truncated or corrupt
// (a compressor's checksum fails), or when more than MaxTarTrailer bytes
// follow the end-of-archive marker.
func (s *Store) ReadTar(ctx context.Context, r io.Reader, opts TarOptions, p Progress) (*Tree, error) {
	p = orNoProgress(p)
	p.Total(-1)
	plain, err := NewUncompressed(r)
	if err != nil {
		return nil, err
	}
	defer plain.Close()
	tr := &tarReader{
		opts: opts, byPath: map[string]int{}, groups: map[int]uint64{}, synth: map[string]bool{},
		t:    &Tree{Manifest: &Manifest{}, st: s.newStaging()},
		jobs: make(chan fileJob, 64), errs: make(chan error, 1),
		digests: map[int]digest.Digest{},
	}
	tr.startWorkers(p)
	tr.put(Entry{Path: "/", Type: TypeDir, Mode: 0o755})
	tr.synth["/"] = true
	tail := &tailReader{r: plain}
	tr.raw = tail
	err = tr.read(ctx, tar.NewReader(tail), p)
	if err == nil && !tail.endsWithZeroBlock() {
		err = errors.New("tar stream truncated: it ends without the end-of-archive marker")
	}
	if err == nil {
		err = plain.Finish(MaxTarTrailer)
	} else {
		err = plain.Explain(err)
	}
	close(tr.jobs)
	tr.wg.Wait()
	if err == nil {
		select {
		case err = <-tr.errs:
		default:
		}
	}
	if err != nil {
		tr.t.Abort()
		return nil, err
	}
	for i, d := range tr.digests {
		tr.t.Manifest.Entries[i].Digest = d
	}
	tr.applyOpaque()
	finishHardlinks(tr.t.Manifest)
	for dir := range tr.synth {
		tr.t.Implied = append(tr.t.Implied, dir)
	}
	slices.SortFunc(tr.t.Implied, ComparePaths)
	return tr.t, nil
}

type fileJob struct {
	idx  int // index of the entry in Manifest.Entries
	data []byte
}

type tarReader struct {
	opts TarOptions
	t    *Tree
	raw  *tailReader // the stream, counting the bytes it carried
	// given counts the bytes of file content entries gave.
	given  int64
	byPath map[string]int  // path -> index in Manifest.Entries
	groups map[int]uint64  // index of a hardlink target -> its group
	opaque []string        // directories marked opaque by OCI markers
	synth  map[string]bool // directories made up because entries lay below them
	jobs   chan fileJob
	errs   chan error
	wg     sync.WaitGroup

	mu      sync.Mutex
	digests map[int]digest.Digest // results of the worker pool, by entry index
}

// startWorkers hashes and stages buffered file content on all cores while
// the stream is being read.
func (tr *tarReader) startWorkers(p Progress) {
	for range runtime.NumCPU() {
		tr.wg.Add(1)
		go func() {
			defer tr.wg.Done()
			for j := range tr.jobs {
				d := digest.FromBytes(j.data)
				if err := tr.t.st.putBytes(d, j.data); err != nil {
					tr.fail(err)
					continue
				}
				tr.mu.Lock()
				tr.digests[j.idx] = d
				tr.mu.Unlock()
				p.Advance(int64(len(j.data)))
			}
		}()
	}
}

func (tr *tarReader) fail(err error) {
	select {
	case tr.errs <- err:
	default:
	}
}

func (tr *tarReader) read(ctx context.Context, r *tar.Reader, p Progress) error {
	for n := 0; ; n++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		select {
		case err := <-tr.errs:
			return err
		default:
		}
		hdr, err := r.Next()
		if err == io.EOF {
			if n == 0 {
				return errors.New("empty tar stream: no entries")
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("tar stream corrupt or truncated after %d entries: %w", n, err)
		}
		if err := tr.add(hdr, r, p); err != nil {
			return fmt.Errorf("tar entry %q: %w", hdr.Name, err)
		}
	}
}

// add turns one header (and its content) into an entry.
func (tr *tarReader) add(hdr *tar.Header, r io.Reader, p Progress) error {
	name, err := CleanPath(hdr.Name)
	if err != nil {
		return err
	}
	if tr.opts.OCIWhiteouts {
		if handled, err := tr.addOCIWhiteout(name); handled || err != nil {
			return err
		}
	}
	if _, dup := tr.byPath[name]; dup && !tr.synth[name] {
		return errors.New("duplicate entry")
	}
	if err := tr.ensureParents(name); err != nil {
		return err
	}
	e, err := entryFromHeader(name, hdr)
	if err != nil {
		return err
	}
	if tr.synth[name] && e.Type != TypeDir {
		return fmt.Errorf("entry is a %s, but earlier entries lie below it", e.Type)
	}
	delete(tr.synth, name)
	switch hdr.Typeflag {
	case tar.TypeLink:
		if err := tr.link(&e, hdr.Linkname); err != nil {
			return err
		}
	case tar.TypeReg, tar.TypeGNUSparse: // archive/tar reports old-style '\x00' entries as TypeReg, and expands sparse ones
		if err := tr.content(&e, holeLimit{r: r, tr: tr}, hdr.Size, p); err != nil {
			return err
		}
	}
	tr.put(e)
	return nil
}

// put adds e, replacing the synthesized root if e is the root.
func (tr *tarReader) put(e Entry) {
	m := tr.t.Manifest
	if i, ok := tr.byPath[e.Path]; ok {
		m.Entries[i] = e
		return
	}
	tr.byPath[e.Path] = len(m.Entries)
	m.Entries = append(m.Entries, e)
}

// ensureParents checks that every ancestor of name is a directory, creating
// missing ones as root-owned 0755 directories with a zero mtime.
func (tr *tarReader) ensureParents(name string) error {
	if name == "/" {
		return nil
	}
	parent := Parent(name)
	if i, ok := tr.byPath[parent]; ok {
		pe := &tr.t.Manifest.Entries[i]
		switch pe.Type {
		case TypeDir:
			return nil
		case TypeSymlink:
			return fmt.Errorf("path passes through symlink %q (-> %q)", pe.Path, pe.Target)
		default:
			return fmt.Errorf("parent %q is a %s, not a directory", pe.Path, pe.Type)
		}
	}
	if err := tr.ensureParents(parent); err != nil {
		return err
	}
	tr.put(Entry{Path: parent, Type: TypeDir, Mode: 0o755})
	tr.synth[parent] = true
	return nil
}

func (tr *tarReader) link(e *Entry, linkname string) error {
	target, err := CleanPath(linkname)
	if err != nil {
		return fmt.Errorf("hardlink target: %w", err)
	}
	i, ok := tr.byPath[target]
	if !ok {
		return fmt.Errorf("hardlink to %q, which is not earlier in the archive", linkname)
	}
	te := &tr.t.Manifest.Entries[i]
	if te.Type != TypeReg {
		return fmt.Errorf("hardlink to %q, which is a %s", linkname, te.Type)
	}
	g, ok := tr.groups[i]
	if !ok {
		g = uint64(len(tr.groups) + 1)
		tr.groups[i] = g
		te.group = g
	}
	e.Type, e.group = TypeReg, g
	return nil
}

// content stages the content of a regular file: small files are hashed and
// staged on the worker pool, large ones streamed here.
func (tr *tarReader) content(e *Entry, r io.Reader, size int64, p Progress) error {
	e.Size = size
	if size <= 4<<20 {
		data := make([]byte, size)
		if _, err := io.ReadFull(r, data); err != nil {
			return fmt.Errorf("archive truncated in file content: %w", err)
		}
		tr.jobs <- fileJob{idx: tr.indexOf(e.Path), data: data}
		return nil
	}
	d, n, err := tr.t.st.putReader(r)
	if err != nil {
		return fmt.Errorf("file content: %w", err)
	}
	if n != size {
		return fmt.Errorf("archive truncated in file content (%d of %d bytes)", n, size)
	}
	e.Digest = d
	p.Advance(n)
	return nil
}

// holeLimit reads file content, refusing it once the entries have given
// more bytes of content than the stream carried by more than the holes
// allowed: archive/tar expands the holes of sparse entries as zeros.
type holeLimit struct {
	r  io.Reader
	tr *tarReader
}

func (h holeLimit) Read(p []byte) (int, error) {
	limit := h.tr.opts.MaxHoles
	if limit == 0 {
		limit = DefaultMaxTarHoles
	}
	if limit > 0 && h.tr.given-h.tr.raw.n > limit { // checked first: io.ReadFull drops the error of a read that fills its buffer
		return 0, fmt.Errorf("%w: more than %d bytes of holes", ErrTooSparse, limit)
	}
	n, err := h.r.Read(p)
	h.tr.given += int64(n)
	return n, err
}

// indexOf is the index the entry for path has or will get from put.
func (tr *tarReader) indexOf(path string) int {
	if i, ok := tr.byPath[path]; ok {
		return i
	}
	return len(tr.t.Manifest.Entries)
}

// addOCIWhiteout maps an OCI whiteout file to a whiteout entry or an opaque
// directory, and reports whether name was one.
func (tr *tarReader) addOCIWhiteout(name string) (bool, error) {
	base := path.Base(name)
	hidden, ok := strings.CutPrefix(base, ".wh.")
	if !ok {
		return false, nil
	}
	if err := tr.ensureParents(name); err != nil {
		return true, err
	}
	if hidden == ".wh..opq" {
		tr.opaque = append(tr.opaque, Parent(name))
		return true, nil
	}
	target := path.Join(Parent(name), hidden)
	if _, dup := tr.byPath[target]; dup {
		return true, fmt.Errorf("whiteout for %q, which is also in this layer", target)
	}
	tr.put(Entry{Path: target, Type: TypeWhiteout})
	return true, nil
}

// applyOpaque marks the directories named by OCI opaque markers.
func (tr *tarReader) applyOpaque() {
	for _, dir := range tr.opaque {
		tr.t.Manifest.Entries[tr.byPath[dir]].Opaque = true
	}
}

// entryFromHeader maps a tar header's metadata to an entry.
func entryFromHeader(name string, hdr *tar.Header) (Entry, error) {
	e := Entry{
		Path:  name,
		Mode:  uint32(hdr.Mode) & 0o7777,
		UID:   uint32(hdr.Uid),
		GID:   uint32(hdr.Gid),
		Mtime: hdr.ModTime.UnixNano(),
	}
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeGNUSparse, tar.TypeLink:
		e.Type = TypeReg
	case tar.TypeDir:
		e.Type = TypeDir
	case tar.TypeSymlink:
		if hdr.Linkname == "" {
			return e, errors.New("symlink with an empty target")
		}
		e.Type, e.Target = TypeSymlink, hdr.Linkname
	case tar.TypeChar:
		e.Type, e.Major, e.Minor = TypeChar, uint32(hdr.Devmajor), uint32(hdr.Devminor)
	case tar.TypeBlock:
		e.Type, e.Major, e.Minor = TypeBlock, uint32(hdr.Devmajor), uint32(hdr.Devminor)
	case tar.TypeFifo:
		e.Type = TypeFifo
	default:
		return e, fmt.Errorf("unsupported tar entry type %q", hdr.Typeflag)
	}
	for k, v := range hdr.PAXRecords {
		if x, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
			e.Xattrs = append(e.Xattrs, Xattr{Name: x, Value: []byte(v)})
		}
	}
	sortXattrs(e.Xattrs)
	return e, nil
}

// tailReader remembers the last 512 bytes read, to tell a complete tar
// stream (ending in zero blocks) from one cut at an entry boundary, which
// archive/tar reports as a clean end.
type tailReader struct {
	r    io.Reader
	tail [512]byte
	n    int64
}

func (t *tailReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n >= len(t.tail) {
		copy(t.tail[:], p[n-len(t.tail):n])
	} else if n > 0 {
		copy(t.tail[:], t.tail[n:])
		copy(t.tail[len(t.tail)-n:], p[:n])
	}
	t.n += int64(n)
	return n, err
}

func (t *tailReader) endsWithZeroBlock() bool {
	return t.n >= 1024 && t.tail == [512]byte{}
}
