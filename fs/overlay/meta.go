package overlay

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/acetate/acetate/fs/upper"
	"github.com/acetate/acetate/layers"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// MetaDir is where the metadata tree of layer d lives.
func MetaDir(s *layers.Store, d digest.Digest) string {
	return filepath.Join(s.LayerDir(d), "meta")
}

// BuildMeta makes sure every layer of stack has its metadata tree and
// returns their directories in the same order. A tree is built once, in the
// store's tmp/ directory, and renamed into place complete, so two processes
// building the same one at once both succeed and a crash leaves only a
// temporary directory that GC removes. It holds the store's shared lock
// while building, so GC does not remove what it is writing.
func BuildMeta(s *layers.Store, stack []digest.Digest) ([]string, error) {
	dirs := make([]string, len(stack))
	var lock *layers.Lock
	defer func() {
		if lock != nil {
			lock.Unlock()
		}
	}()
	for i, d := range stack {
		dirs[i] = MetaDir(s, d)
		if _, err := os.Stat(dirs[i]); err == nil {
			continue
		}
		if lock == nil {
			var err error
			if lock, err = s.LockShared(); err != nil {
				return nil, err
			}
		}
		if err := buildMeta(s, d); err != nil {
			return nil, fmt.Errorf("metadata tree of layer %s: %w", d, err)
		}
	}
	return dirs, nil
}

// noRootFile, in a layer's directory, marks a layer whose manifest has no
// root entry (an application layer that changed nothing): its metadata
// tree's root carries no metadata. It is written before the tree.
const noRootFile = "meta-noroot"

// RootMeta returns the metadata tree (of metas, the trees of stack) whose
// root holds the root directory's metadata as the stack shows it: the top
// one built from a layer with a root entry.
func RootMeta(s *layers.Store, stack []digest.Digest, metas []string) (string, error) {
	for i := len(stack) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(s.LayerDir(stack[i]), noRootFile)); errors.Is(err, os.ErrNotExist) {
			return metas[i], nil
		}
	}
	return "", errors.New("no layer of the stack has a root directory")
}

func buildMeta(s *layers.Store, d digest.Digest) error {
	m, err := s.ReadLayer(d)
	if err != nil {
		return err
	}
	if len(m.Entries) == 0 || m.Entries[0].Path != "/" {
		if err := os.WriteFile(filepath.Join(s.LayerDir(d), noRootFile), nil, 0o444); err != nil {
			return err
		}
	}
	tmp, err := os.MkdirTemp(s.TmpDir(), "meta-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := writeMeta(tmp, m); err != nil {
		return err
	}
	// No sync before the rename: the tree holds no file data, only
	// metadata, which journaling filesystems (ext4, xfs) commit in order,
	// so a rename that survives a crash has the whole tree behind it.
	err = os.Rename(tmp, MetaDir(s, d))
	if err != nil && !errors.Is(err, unix.EEXIST) && !errors.Is(err, unix.ENOTEMPTY) {
		return err
	}
	return nil
}

// writeMeta writes the metadata tree of manifest m into the empty
// directory root.
func writeMeta(root string, m *layers.Manifest) error {
	var dirs []*layers.Entry
	opaque := "" // whiteouts below an opaque directory of this layer hide nothing
	for i := range m.Entries {
		e := &m.Entries[i]
		if opaque != "" && !layers.IsUnder(e.Path, opaque) {
			opaque = ""
		}
		if e.Type == layers.TypeWhiteout && opaque != "" {
			continue
		}
		if err := createMeta(root, e); err != nil {
			return fmt.Errorf("%s: %w", e.Path, err)
		}
		if e.Type == layers.TypeDir {
			dirs = append(dirs, e)
			if e.Opaque && opaque == "" {
				opaque = e.Path
			}
		}
	}
	// Directory metadata last, deepest first, so that creating children
	// does not change a directory's mtime after it is set.
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := upper.SetMetadata(filepath.Join(root, dirs[i].Path), dirs[i]); err != nil {
			return err
		}
	}
	return nil
}

// createMeta creates the metadata-tree form of one entry.
func createMeta(root string, e *layers.Entry) error {
	p := filepath.Join(root, e.Path)
	switch e.Type {
	case layers.TypeDir:
		if e.Path != "/" {
			if err := unix.Mkdir(p, 0o700); err != nil {
				return err
			}
		}
		if e.Opaque {
			return unix.Setxattr(p, upper.XattrOpaque, []byte("y"), 0)
		}
		return nil
	case layers.TypeWhiteout:
		return unix.Mknod(p, unix.S_IFCHR, 0)
	case layers.TypeReg:
		if e.LinkTo != "" {
			err := os.Link(filepath.Join(root, e.LinkTo), p)
			if err == nil || !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
		if err := metacopyFile(p, e); err != nil {
			return err
		}
	case layers.TypeSymlink:
		if err := os.Symlink(e.Target, p); err != nil {
			return err
		}
	case layers.TypeChar, layers.TypeBlock, layers.TypeFifo, layers.TypeSocket:
		kind := map[layers.Type]uint32{layers.TypeChar: unix.S_IFCHR, layers.TypeBlock: unix.S_IFBLK,
			layers.TypeFifo: unix.S_IFIFO, layers.TypeSocket: unix.S_IFSOCK}[e.Type]
		if err := unix.Mknod(p, kind|0o600, int(unix.Mkdev(e.Major, e.Minor))); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unsupported entry type %s", e.Type)
	}
	return upper.SetMetadata(p, e)
}

// metacopyFile creates an empty sparse file of e's size whose data
// overlayfs finds at e's object in the data-only layer.
func metacopyFile(p string, e *layers.Entry) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(e.Size); err != nil {
		return err
	}
	fd := int(f.Fd())
	if err := unix.Fsetxattr(fd, upper.XattrMetacopy, nil, 0); err != nil {
		return fmt.Errorf("set %s: %w", upper.XattrMetacopy, err)
	}
	if err := unix.Fsetxattr(fd, upper.XattrRedirect, []byte("/"+layers.ObjectPath(e.Digest)), 0); err != nil {
		return fmt.Errorf("set %s: %w", upper.XattrRedirect, err)
	}
	return f.Close()
}
