package layers

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// ExportDir writes the merged tree entries into dst, which must not exist
// or be an empty directory, with every piece of metadata: owners, modes
// (setuid included), nanosecond times, xattrs, hardlinks, device nodes and
// holes in sparse files. Content is verified against its digest as it is
// copied; a corrupt object fails the export.
func (s *Store) ExportDir(ctx context.Context, entries []Entry, dst string, p Progress) error {
	p = orNoProgress(p)
	p.Total(totalSize(entries))
	if err := os.Mkdir(dst, 0o700); err != nil && !os.IsExist(err) {
		return fmt.Errorf("export to %s: %w", dst, err)
	}
	if names, err := readNames(dst); err != nil || len(names) > 0 {
		return fmt.Errorf("export to %s: not an empty directory", dst)
	}
	x := &dirExporter{s: s, dst: dst, dirs: map[string]bool{"/": true}, written: map[string]bool{}, buf: make([]byte, 1<<20)}
	var dirs []*Entry
	for i := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		e := &entries[i]
		if err := x.create(e, p); err != nil {
			return fmt.Errorf("export %s: %w", e.Path, err)
		}
		if e.Type == TypeDir {
			dirs = append(dirs, e)
		}
	}
	// Directory metadata last, deepest first, so creating children does not
	// change a directory's mtime after it is set.
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := x.setMeta(dirs[i]); err != nil {
			return fmt.Errorf("export %s: %w", dirs[i].Path, err)
		}
	}
	return nil
}

func totalSize(entries []Entry) int64 {
	var n int64
	for i := range entries {
		if entries[i].Type == TypeReg && entries[i].LinkTo == "" {
			n += entries[i].Size
		}
	}
	return n
}

type dirExporter struct {
	s       *Store
	dst     string
	dirs    map[string]bool // directories this export created
	written map[string]bool // regular files this export wrote
	buf     []byte
}

func (x *dirExporter) path(e *Entry) string { return filepath.Join(x.dst, e.Path) }

// create makes one entry. Its parent must be a directory this export made,
// so no entry can be created through a symlink.
func (x *dirExporter) create(e *Entry, p Progress) error {
	if !x.dirs[Parent(e.Path)] {
		return errors.New("parent is not a directory of this tree")
	}
	path := x.path(e)
	switch e.Type {
	case TypeDir:
		if e.Path != "/" {
			if err := unix.Mkdir(path, 0o700); err != nil {
				return err
			}
		}
		x.dirs[e.Path] = true
		return nil
	case TypeReg:
		if e.LinkTo != "" && x.written[e.LinkTo] {
			return os.Link(filepath.Join(x.dst, e.LinkTo), path)
		}
		if err := x.writeFile(e, path, p); err != nil {
			return err
		}
		x.written[e.Path] = true
		return nil
	case TypeSymlink:
		if err := os.Symlink(e.Target, path); err != nil {
			return err
		}
	case TypeChar, TypeBlock, TypeFifo, TypeSocket:
		if err := unix.Mknod(path, nodeMode(e), int(unix.Mkdev(e.Major, e.Minor))); err != nil {
			return err
		}
	default:
		return fmt.Errorf("cannot export a %s", e.Type)
	}
	return x.setMeta(e)
}

func nodeMode(e *Entry) uint32 {
	kind := map[Type]uint32{TypeChar: unix.S_IFCHR, TypeBlock: unix.S_IFBLK, TypeFifo: unix.S_IFIFO, TypeSocket: unix.S_IFSOCK}[e.Type]
	return kind | e.Mode&0o777
}

// writeFile writes the content of e from its object, data only: holes stay
// holes. The content is verified against its digest as it is copied.
func (x *dirExporter) writeFile(e *Entry, path string, p Progress) error {
	obj, err := x.s.openObjectFile(e.Digest)
	if err != nil {
		return err
	}
	defer obj.Close()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	err = x.s.checkCopy(obj, e.Digest, e.Size, f, x.buf)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	p.Advance(e.Size)
	return x.setMeta(e)
}

// setMeta applies owner, xattrs, mode and times, in that order: chown clears
// setuid bits and file capabilities, so they come after it.
func (x *dirExporter) setMeta(e *Entry) error {
	path := x.path(e)
	if err := unix.Lchown(path, int(e.UID), int(e.GID)); err != nil {
		return err
	}
	for _, xa := range e.Xattrs {
		if err := unix.Lsetxattr(path, xa.Name, xa.Value, 0); err != nil {
			return fmt.Errorf("xattr %s: %w", xa.Name, err)
		}
	}
	if e.Type != TypeSymlink {
		if err := unix.Chmod(path, e.Mode); err != nil {
			return err
		}
	}
	t := unix.NsecToTimespec(e.Mtime)
	return unix.UtimesNanoAt(unix.AT_FDCWD, path, []unix.Timespec{t, t}, unix.AT_SYMLINK_NOFOLLOW)
}

// ExportTar writes the merged tree entries to w as a PAX tar stream
// (nanosecond times, xattrs as SCHILY.xattr records, hardlinks as links).
// Content is verified as it is written; a corrupt object fails the export,
// and the caller discards what was written. The same entries always give
// the same bytes.
func (s *Store) ExportTar(ctx context.Context, entries []Entry, w io.Writer, p Progress) error {
	return s.exportTar(ctx, entries, &tarExporter{w: w, tw: tar.NewWriter(w), written: map[string]bool{}}, p)
}

// ExportSparseTar is ExportTar keeping holes: a file whose object has holes
// is written as a GNU sparse entry (PAX format 1.0, which GNU tar and Go's
// archive/tar extract as sparse files) holding only its data. Its bytes
// depend on where the store's filesystem keeps holes, so layers that must
// be reproducible use ExportTar.
func (s *Store) ExportSparseTar(ctx context.Context, entries []Entry, w io.Writer, p Progress) error {
	return s.exportTar(ctx, entries, &tarExporter{w: w, tw: tar.NewWriter(w), written: map[string]bool{}, sparse: true, buf: make([]byte, 1<<20)}, p)
}

// tarExporter writes one tar stream.
type tarExporter struct {
	w       io.Writer
	tw      *tar.Writer
	written map[string]bool // regular files written, for hardlinks
	sparse  bool
	buf     []byte
}

func (s *Store) exportTar(ctx context.Context, entries []Entry, x *tarExporter, p Progress) error {
	p = orNoProgress(p)
	p.Total(totalSize(entries))
	for i := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		e := &entries[i]
		if err := s.writeTarEntry(x, e, p); err != nil {
			return fmt.Errorf("export %s: %w", e.Path, err)
		}
	}
	return x.tw.Close()
}

func (s *Store) writeTarEntry(x *tarExporter, e *Entry, p Progress) error {
	hdr, err := tarHeader(e)
	if err != nil {
		return err
	}
	if e.Type == TypeReg && e.LinkTo != "" && x.written[e.LinkTo] {
		hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, e.LinkTo[1:], 0
	}
	if hdr.Typeflag != tar.TypeReg {
		return x.tw.WriteHeader(hdr)
	}
	x.written[e.Path] = true
	if x.sparse {
		if done, err := s.writeSparse(x, e); done || err != nil {
			p.Advance(e.Size)
			return err
		}
	}
	if err := x.tw.WriteHeader(hdr); err != nil {
		return err
	}
	r, err := s.OpenObject(e.Digest, e.Size)
	if err != nil {
		return err
	}
	defer r.Close()
	n, err := io.Copy(x.tw, r)
	p.Advance(n)
	return err
}

// writeSparse writes e as a GNU sparse entry when its object has holes, and
// reports whether it did.
func (s *Store) writeSparse(x *tarExporter, e *Entry) (bool, error) {
	obj, err := s.openObjectFile(e.Digest)
	if err != nil {
		return false, err
	}
	defer obj.Close()
	xs, sparse, err := holes(obj, e.Size)
	if err != nil || !sparse {
		return false, err
	}
	if err := x.tw.Flush(); err != nil {
		return false, err
	}
	return true, writeSparseEntry(x.w, e, obj, xs, x.buf)
}

// tarHeader maps an entry to a tar header, the inverse of entryFromHeader.
func tarHeader(e *Entry) (*tar.Header, error) {
	hdr := &tar.Header{
		Name:    e.Path[1:],
		Mode:    int64(e.Mode),
		Uid:     int(e.UID),
		Gid:     int(e.GID),
		ModTime: time.Unix(0, e.Mtime),
		Format:  tar.FormatPAX,
	}
	switch e.Type {
	case TypeDir:
		hdr.Typeflag, hdr.Name = tar.TypeDir, hdr.Name+"/"
		if e.Path == "/" {
			hdr.Name = "./"
		}
	case TypeReg:
		hdr.Typeflag, hdr.Size = tar.TypeReg, e.Size
	case TypeSymlink:
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, e.Target
	case TypeChar:
		hdr.Typeflag, hdr.Devmajor, hdr.Devminor = tar.TypeChar, int64(e.Major), int64(e.Minor)
	case TypeBlock:
		hdr.Typeflag, hdr.Devmajor, hdr.Devminor = tar.TypeBlock, int64(e.Major), int64(e.Minor)
	case TypeFifo:
		hdr.Typeflag = tar.TypeFifo
	default:
		return nil, fmt.Errorf("a %s cannot be stored in a tar stream", e.Type)
	}
	if len(e.Xattrs) > 0 {
		hdr.PAXRecords = map[string]string{}
		for _, x := range e.Xattrs {
			hdr.PAXRecords["SCHILY.xattr."+x.Name] = string(x.Value)
		}
	}
	return hdr, nil
}
