package overlay

import (
	"encoding/base64"
	"encoding/hex"
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

// DataDir is where the data names of layer d live: hardlinks to the
// layer's objects, under names short enough (see dataName) that a metadata
// file's redirect fits in its inode. With the 68-byte object path it
// needs a 4 KiB xattr block of its own on ext4, which made the trees 5 KiB
// a file and a cold walk of a container three times slower than one of a
// plain directory. Trees built before data directories existed redirect
// to the object path, which mounts still resolve.
func DataDir(s *layers.Store, d digest.Digest) string {
	return filepath.Join(s.LayerDir(d), "data")
}

// dataName is the name of object d in a data directory: the first 128 bits
// of its digest in unpadded base64url (22 bytes; with the leading "/" the
// redirect is 23, which ext4's 256-byte inodes hold next to the metacopy
// xattr). Finding two objects whose names collide takes about 2^64 hashes.
func dataName(d digest.Digest) (string, error) {
	raw, err := hex.DecodeString(d.Encoded()[:32])
	if err != nil {
		return "", fmt.Errorf("object %s: %w", d, err)
	}
	return base64.RawURLEncoding.EncodeToString(raw), nil
}

// BuildMeta makes sure every layer of stack has its metadata tree and data
// directory, and returns the trees' directories in the same order. A
// missing data directory is made again (and the tree in place kept: its
// names are the same). A tree is built once, in the
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
		if exists(dirs[i]) && exists(DataDir(s, d)) {
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

// exists reports whether p exists.
func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
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
	w := &metaWriter{store: s, root: filepath.Join(tmp, "meta"), data: filepath.Join(tmp, "data")}
	if err := w.write(m); err != nil {
		return err
	}
	// No sync before the renames: the trees hold no file data, only
	// metadata, which journaling filesystems (ext4, xfs) commit in order,
	// so a rename that survives a crash has the whole tree behind it. The
	// data directory goes first: a metadata tree in place is complete.
	if err := renameNew(w.data, DataDir(s, d)); err != nil {
		return err
	}
	return renameNew(w.root, MetaDir(s, d))
}

// renameNew renames the directory from to to, unless another process put
// one there first.
func renameNew(from, to string) error {
	err := os.Rename(from, to)
	if err != nil && !errors.Is(err, unix.EEXIST) && !errors.Is(err, unix.ENOTEMPTY) {
		return err
	}
	return nil
}

// metaWriter writes the metadata tree of one layer into root and the
// layer's data names into data.
type metaWriter struct {
	store      *layers.Store
	root, data string
}

// write writes the trees of manifest m.
func (w *metaWriter) write(m *layers.Manifest) error {
	if err := os.Mkdir(w.root, 0o700); err != nil {
		return err
	}
	if err := os.Mkdir(w.data, 0o700); err != nil {
		return err
	}
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
		if err := w.create(e); err != nil {
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
		if err := upper.SetMetadata(filepath.Join(w.root, dirs[i].Path), dirs[i]); err != nil {
			return err
		}
	}
	return nil
}

// create creates the metadata-tree form of one entry.
func (w *metaWriter) create(e *layers.Entry) error {
	p := filepath.Join(w.root, e.Path)
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
			err := os.Link(filepath.Join(w.root, e.LinkTo), p)
			if err == nil || !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
		if err := w.metacopyFile(p, e); err != nil {
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
// overlayfs finds at e's object, through the layer's data directory.
func (w *metaWriter) metacopyFile(p string, e *layers.Entry) error {
	redirect, err := w.dataPath(e.Digest)
	if err != nil {
		return err
	}
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
	if err := unix.Fsetxattr(fd, upper.XattrRedirect, []byte(redirect), 0); err != nil {
		return fmt.Errorf("set %s: %w", upper.XattrRedirect, err)
	}
	return f.Close()
}

// dataPath links object d into the data directory, once per layer, and
// returns the redirect to it; for an object that has as many links as its
// filesystem allows, the redirect to the object itself.
func (w *metaWriter) dataPath(d digest.Digest) (string, error) {
	name, err := dataName(d)
	if err != nil {
		return "", err
	}
	err = os.Link(w.store.ObjectFile(d), filepath.Join(w.data, name))
	switch {
	case err == nil || errors.Is(err, os.ErrExist):
		return "/" + name, nil
	case errors.Is(err, unix.EMLINK):
		return "/" + layers.ObjectPath(d), nil
	}
	return "", fmt.Errorf("object %s: %w", d, err)
}
