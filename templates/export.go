package templates

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/acetate/acetate/internal/atomicfile"
	"github.com/acetate/acetate/layers"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Export writes the merged tree of t to dst: a directory (which must not
// exist or be empty), or a tar file when dst ends in .tar, .tar.gz, .tgz,
// .tar.zst. The output appears only complete: it is written beside dst and
// renamed into place, so a corrupt object leaves nothing behind. A tar file
// gets mode 0666 less the umask, as tar and cp give (0644 under umask 022).
// Sparse
// files keep their holes: as holes in a directory, as GNU sparse entries
// in a tar file.
func (s *Store) Export(ctx context.Context, t *Template, dst string, p layers.Progress) error {
	entries, err := s.Entries(t)
	if err != nil {
		return err
	}
	if isTarName(dst) {
		return writeAtomically(dst, func(w io.Writer) error {
			return s.writeTar(ctx, entries, dst, w, p)
		})
	}
	return s.exportDir(ctx, entries, dst, p)
}

func isTarName(name string) bool {
	for _, ext := range []string{".tar", ".tar.gz", ".tgz", ".tar.zst"} {
		if strings.HasSuffix(name, ext) {
			return true
		}
	}
	return false
}

// WriteTar writes the merged tree of t as a tar stream, compressed by the
// name's extension (name may be "" for plain tar). Sparse files are written
// as GNU sparse entries holding their data only (see
// layers.Store.ExportSparseTar).
func (s *Store) WriteTar(ctx context.Context, t *Template, name string, w io.Writer, p layers.Progress) error {
	entries, err := s.Entries(t)
	if err != nil {
		return err
	}
	return s.writeTar(ctx, entries, name, w, p)
}

func (s *Store) writeTar(ctx context.Context, entries []layers.Entry, name string, w io.Writer, p layers.Progress) error {
	var zw io.WriteCloser
	switch {
	case strings.HasSuffix(name, ".zst"):
		z, err := zstd.NewWriter(w)
		if err != nil {
			return err
		}
		zw = z
	case strings.HasSuffix(name, ".gz"), strings.HasSuffix(name, ".tgz"):
		zw = gzip.NewWriter(w)
	}
	if zw == nil {
		return s.Layers.ExportSparseTar(ctx, entries, w, p)
	}
	if err := s.Layers.ExportSparseTar(ctx, entries, zw, p); err != nil {
		return err
	}
	return zw.Close()
}

// writeAtomically writes the file dst whole, with mode 0666 less the umask.
func writeAtomically(dst string, write func(io.Writer) error) error {
	err := atomicfile.Write(dst, false, write)
	if err == nil {
		err = os.Chmod(dst, 0o666&^umask())
	}
	if err != nil {
		return fmt.Errorf("export to %s: %w", dst, err)
	}
	return nil
}

// umask returns the process's umask, read from /proc/self/status (Linux
// 4.7+) rather than set and restored, which would race with other
// threads creating files; 022 when it cannot be read.
func umask() os.FileMode {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0o022
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Umask:"); ok {
			if m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
				return os.FileMode(m)
			}
		}
	}
	return 0o022
}

// exportDir exports into a staging directory beside dst and renames it.
func (s *Store) exportDir(ctx context.Context, entries []layers.Entry, dst string, p layers.Progress) error {
	if names, err := os.ReadDir(dst); err == nil && len(names) > 0 {
		return fmt.Errorf("export to %s: directory is not empty", dst)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(filepath.Clean(dst)), "."+filepath.Base(dst)+"-")
	if err != nil {
		return fmt.Errorf("export to %s: %w", dst, err)
	}
	if err := s.Layers.ExportDir(ctx, entries, tmp, p); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	os.Remove(dst) // an empty directory
	if err := os.Rename(tmp, dst); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("export to %s: %w", dst, err)
	}
	return nil
}
