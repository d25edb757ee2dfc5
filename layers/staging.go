package layers

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// stagedFiles numbers the names of staged files, which are unique
// across processes by their pid.
var stagedFiles atomic.Int64

// stagedName is a new path in tmp/ for what this process stages, named
// KIND-PID-N (see StagedBy).
func (s *Store) stagedName(kind string) string {
	return filepath.Join(s.TmpDir(), fmt.Sprintf("%s-%d-%d", kind, os.Getpid(), stagedFiles.Add(1)))
}

// StagedBy returns the pid of the process that staged the tmp/ entry
// named name: a staged object file (object-PID-N) or a staged layer
// directory (layer-PID-N). It returns false for any other name.
func StagedBy(name string) (int, bool) {
	for _, kind := range []string{"object", "layer"} {
		var pid, seq int
		if _, err := fmt.Sscanf(name, kind+"-%d-%d", &pid, &seq); err == nil && pid > 0 {
			return pid, true
		}
	}
	return 0, false
}

// staging collects the new objects of one ingest in tmp/ until commit makes
// them durable and moves them into place. Safe for concurrent use.
type staging struct {
	s       *Store
	mu      sync.Mutex
	pending map[digest.Digest]string // digest -> temp file
	bufs    sync.Pool
}

func (s *Store) newStaging() *staging {
	return &staging{s: s, pending: map[digest.Digest]string{},
		bufs: sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}}
}

// has reports whether d is in the store or already staged.
func (st *staging) has(d digest.Digest) bool {
	st.mu.Lock()
	_, ok := st.pending[d]
	st.mu.Unlock()
	return ok || st.s.HasObject(d)
}

// putBytes stages p, whose digest the caller has computed, unless it is
// already present.
func (st *staging) putBytes(d digest.Digest, p []byte) error {
	if st.has(d) {
		return nil
	}
	got, _, err := st.putReader(bytes.NewReader(p))
	if err == nil && got != d {
		err = fmt.Errorf("staged object %s hashes to %s: %w", d, got, ErrCorrupt)
	}
	return err
}

// putReader stages the content of r and returns its digest and size.
func (st *staging) putReader(r io.Reader) (digest.Digest, int64, error) {
	var n int64
	d, err := st.stage(func(f *os.File, buf []byte) (d digest.Digest, err error) {
		d, n, err = copySparse(f, r, buf)
		return d, err
	})
	return d, n, err
}

// putExtents stages the first size bytes of src, copying only its data.
func (st *staging) putExtents(src *os.File, size int64) (digest.Digest, error) {
	return st.stage(func(f *os.File, buf []byte) (digest.Digest, error) {
		return copyData(src, size, f, buf)
	})
}

// stage has write fill a new unnamed file and return the digest of what
// it wrote, and names the file in tmp/ unless that object is already
// present or staged.
func (st *staging) stage(write func(f *os.File, buf []byte) (digest.Digest, error)) (digest.Digest, error) {
	f, err := st.tempFile()
	if err != nil {
		return "", fmt.Errorf("stage object: %w", err)
	}
	defer f.Close()
	bp := st.bufs.Get().(*[]byte)
	d, err := write(f, *bp)
	st.bufs.Put(bp)
	if err == nil {
		// Start writeback now, so the disk works while the next files are
		// hashed and commit's syncfs has little left to wait for.
		err = unix.SyncFileRange(int(f.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
	}
	if err != nil {
		return "", fmt.Errorf("stage object: %w", err)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if _, dup := st.pending[d]; dup || st.s.HasObject(d) {
		return d, nil
	}
	name := st.s.stagedName("object")
	if err := linkTemp(f, name); err != nil {
		return "", fmt.Errorf("stage object: name %s: %w", name, err)
	}
	st.pending[d] = name
	return d, nil
}

// linkTemp gives the unnamed file f the name name: by its descriptor where
// the caller may (CAP_DAC_READ_SEARCH), else through /proc.
func linkTemp(f *os.File, name string) error {
	err := unix.Linkat(int(f.Fd()), "", unix.AT_FDCWD, name, unix.AT_EMPTY_PATH)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EPERM) {
		err = unix.Linkat(unix.AT_FDCWD, fmt.Sprintf("/proc/self/fd/%d", f.Fd()), unix.AT_FDCWD, name, unix.AT_SYMLINK_FOLLOW)
	}
	return err
}

// tempFile makes an unnamed read-only file in tmp/, which putReader names
// only once it is complete, so that a killed publish leaves no partly
// written file. Without a name, ext4 allocates its inode without locking
// tmp/, so that parallel writers do not wait for each other.
func (st *staging) tempFile() (*os.File, error) {
	dir := st.s.TmpDir()
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o444)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	return os.NewFile(uintptr(fd), dir+"/(object)"), nil
}

// putFile stages the regular file at path and returns its digest and size.
func (st *staging) putFile(path string) (digest.Digest, int64, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOATIME, 0)
	if errors.Is(err, unix.EPERM) {
		f, err = os.Open(path)
	}
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	return st.putOpen(f)
}

// putOpen stages the content of the open regular file f and returns its
// digest and size. Small files are read once. Larger ones are read by
// their data only (holes are hashed as zeros, never read, and stay holes):
// a file with holes is staged as it is hashed, in one pass; a dense one is
// hashed first and copied only when the store lacks it, so re-publishing
// an unchanged tree writes nothing. A file whose content changes between
// the two passes is refused.
func (st *staging) putOpen(f *os.File) (digest.Digest, int64, error) {
	var sys unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &sys); err != nil {
		return "", 0, fmt.Errorf("stat: %w", err)
	}
	size := sys.Size
	if size <= 4<<20 {
		p := make([]byte, size)
		if _, err := io.ReadFull(f, p); err != nil {
			return "", 0, fmt.Errorf("read: %w (file changed during publish?)", err)
		}
		d := digest.FromBytes(p)
		return d, size, st.putBytes(d, p)
	}
	if isSparse(&sys) {
		d, err := st.putExtents(f, size)
		return d, size, err
	}
	bp := st.bufs.Get().(*[]byte)
	d, err := copyData(f, size, nil, *bp)
	st.bufs.Put(bp)
	if err != nil || st.has(d) {
		return d, size, err
	}
	got, err := st.putExtents(f, size)
	if err == nil && got != d {
		err = errors.New("the file changed while it was being published")
	}
	return d, size, err
}

// commit makes every staged object durable (one syncfs) and then renames it
// into place, so that an object under its final name is always complete.
func (st *staging) commit() error {
	if len(st.pending) == 0 {
		return nil
	}
	if err := st.s.syncfs(); err != nil {
		return err
	}
	for d, tmp := range st.pending {
		dst := st.s.ObjectFile(d)
		err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, dst, unix.RENAME_NOREPLACE)
		if errors.Is(err, unix.ENOENT) {
			if err = os.MkdirAll(filepath.Dir(dst), 0o700); err == nil {
				err = unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, dst, unix.RENAME_NOREPLACE)
			}
		}
		if errors.Is(err, unix.EEXIST) {
			err = os.Remove(tmp)
		}
		if err != nil {
			return fmt.Errorf("store object %s: %w", d, err)
		}
		delete(st.pending, d)
	}
	return st.s.syncfs()
}

// abort removes every staged file.
func (st *staging) abort() {
	for _, tmp := range st.pending {
		os.Remove(tmp)
	}
	st.pending = map[digest.Digest]string{}
}
