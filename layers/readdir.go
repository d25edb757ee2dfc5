package layers

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"

	"golang.org/x/sys/unix"
)

// ReadDir reads the tree under dir into the store: its metadata into a
// manifest, the content of its regular files into staged objects. Hashing
// and copying run on all cores. Mount points below dir are not crossed.
func (s *Store) ReadDir(ctx context.Context, dir string, p Progress) (*Tree, error) {
	p = orNoProgress(p)
	if resolved, err := filepath.EvalSymlinks(dir); err == nil {
		dir = resolved
	}
	var root unix.Stat_t
	if err := unix.Stat(dir, &root); err != nil {
		return nil, fmt.Errorf("source %s: %w", dir, err)
	}
	if root.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil, fmt.Errorf("source %s: not a directory", dir)
	}
	w := &dirWalker{dev: root.Dev, inodes: map[[2]uint64]uint64{}}
	m := &Manifest{}
	if err := w.walk(dir, "/", &root, m); err != nil {
		return nil, err
	}
	var total int64
	for _, i := range w.files {
		total += m.Entries[i].Size
	}
	p.Total(total)
	t := &Tree{Manifest: m, st: s.newStaging()}
	if err := t.ingestFiles(ctx, dir, w.files, p); err != nil {
		t.Abort()
		return nil, err
	}
	finishHardlinks(m)
	return t, nil
}

// dirWalker collects entries; files lists the entries whose content must be
// read (one per inode).
type dirWalker struct {
	dev    uint64
	inodes map[[2]uint64]uint64 // dev, ino -> hardlink group
	files  []int
}

func (w *dirWalker) walk(abs, rel string, st *unix.Stat_t, m *Manifest) error {
	e, err := entryFromStat(abs, rel, st)
	if err != nil {
		return err
	}
	if e.Type == TypeReg {
		key := [2]uint64{st.Dev, st.Ino}
		if g, seen := w.inodes[key]; seen {
			e.group = g
		} else {
			if st.Nlink > 1 {
				e.group = uint64(len(w.inodes) + 1)
				w.inodes[key] = e.group
			}
			w.files = append(w.files, len(m.Entries))
		}
	}
	m.Entries = append(m.Entries, e)
	if e.Type != TypeDir || (st.Dev != w.dev && rel != "/") {
		return nil
	}
	names, err := readNames(abs)
	if err != nil {
		return fmt.Errorf("source %s: %w", abs, err)
	}
	for _, name := range names {
		childAbs := filepath.Join(abs, name)
		var cst unix.Stat_t
		if err := unix.Lstat(childAbs, &cst); err != nil {
			return fmt.Errorf("source %s: %w", childAbs, err)
		}
		if err := w.walk(childAbs, filepath.Join(rel, name), &cst, m); err != nil {
			return err
		}
	}
	return nil
}

func readNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	slices.Sort(names)
	return names, err
}

// entryFromStat describes the file at abs, named rel in the tree.
func entryFromStat(abs, rel string, st *unix.Stat_t) (Entry, error) {
	e := Entry{
		Path:  rel,
		Mode:  st.Mode & 0o7777,
		UID:   st.Uid,
		GID:   st.Gid,
		Mtime: st.Mtim.Sec*1e9 + st.Mtim.Nsec,
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		e.Type = TypeDir
	case unix.S_IFREG:
		e.Type, e.Size = TypeReg, st.Size
	case unix.S_IFLNK:
		target, err := os.Readlink(abs)
		if err != nil {
			return e, fmt.Errorf("source %s: %w", abs, err)
		}
		e.Type, e.Target = TypeSymlink, target
	case unix.S_IFCHR:
		e.Type, e.Major, e.Minor = TypeChar, unix.Major(st.Rdev), unix.Minor(st.Rdev)
	case unix.S_IFBLK:
		e.Type, e.Major, e.Minor = TypeBlock, unix.Major(st.Rdev), unix.Minor(st.Rdev)
	case unix.S_IFIFO:
		e.Type = TypeFifo
	case unix.S_IFSOCK:
		e.Type = TypeSocket
	default:
		return e, fmt.Errorf("source %s: unsupported file type %#o", abs, st.Mode&unix.S_IFMT)
	}
	x, err := ReadXattrs(abs)
	if err != nil {
		return e, fmt.Errorf("source %s: %w", abs, err)
	}
	e.Xattrs = x
	return e, nil
}

// ReadXattrs returns the extended attributes of path (not following a
// symlink), sorted by name.
func ReadXattrs(path string) ([]Xattr, error) {
	buf := make([]byte, 1024)
	n, err := unix.Llistxattr(path, buf)
	if errors.Is(err, unix.ERANGE) {
		if n, err = unix.Llistxattr(path, nil); err == nil {
			buf = make([]byte, n)
			n, err = unix.Llistxattr(path, buf)
		}
	}
	if errors.Is(err, unix.ENOTSUP) {
		return nil, nil
	}
	if err != nil || n == 0 {
		return nil, err
	}
	var xs []Xattr
	for _, name := range splitNul(buf[:n]) {
		v, err := getxattr(path, name)
		if errors.Is(err, unix.ENODATA) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("xattr %s: %w", name, err)
		}
		xs = append(xs, Xattr{Name: name, Value: v})
	}
	sortXattrs(xs)
	return xs, nil
}

func getxattr(path, name string) ([]byte, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Lgetxattr(path, name, buf)
		if errors.Is(err, unix.ERANGE) {
			if n, err = unix.Lgetxattr(path, name, nil); err != nil {
				return nil, err
			}
			buf = make([]byte, n)
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n:n], nil
	}
}

func splitNul(b []byte) []string {
	var out []string
	for len(b) > 0 {
		i := slices.Index(b, 0)
		if i < 0 {
			i = len(b)
		}
		if i > 0 {
			out = append(out, string(b[:i]))
		}
		b = b[min(i+1, len(b)):]
	}
	return out
}

// ingestFiles stages the content of the listed entries, read below dir, on
// all cores.
func (t *Tree) ingestFiles(ctx context.Context, dir string, files []int, p Progress) error {
	jobs := make(chan int)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for range 2 * runtime.NumCPU() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				e := &t.Manifest.Entries[i]
				d, n, err := t.st.putFile(filepath.Join(dir, e.Path))
				if err != nil {
					select {
					case errs <- fmt.Errorf("source %s: %w", filepath.Join(dir, e.Path), err):
					default:
					}
					continue
				}
				e.Digest, e.Size = d, n
				p.Advance(n)
			}
		}()
	}
	var err error
feed:
	for _, i := range files {
		select {
		case jobs <- i:
		case err = <-errs:
			break feed
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errs:
		default:
		}
	}
	return err
}
