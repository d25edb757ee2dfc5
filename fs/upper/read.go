package upper

import (
	"fmt"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/acetate/acetate/internal/beneath"
	"github.com/acetate/acetate/layers"
	"golang.org/x/sys/unix"
)

// Read returns the layer that, stacked on base (the merged entries of the
// template below the upper directory dir), gives the tree the union shows.
// Whiteouts become layers.TypeWhiteout entries and opaque directories
// Entry.Opaque; a renamed (redirected) directory becomes an opaque
// directory holding its whole content. Regular files the upper directory
// holds in full have no digest yet (Layer stages their content); a metacopy
// file takes its digest from the base entry its data comes from. Every
// directory of the upper directory is in the layer, with the metadata it
// has there, so every entry's parent is too. The empty mount points the
// launcher made are left out (see LauncherDirs).
//
// The upper directory belongs to the container, which may change it while
// it is read: see walk for what that cannot do.
func Read(dir string, base []layers.Entry) (*layers.Manifest, error) {
	r, err := read(dir, base, nil)
	if err != nil {
		return nil, err
	}
	return r.m, nil
}

// Metacopies returns the metacopy files of the upper directory dir, by
// path, each with the path in base its data comes from.
func Metacopies(dir string, base []layers.Entry) (map[string]string, error) {
	r, err := read(dir, base, nil)
	if err != nil {
		return nil, err
	}
	return r.metacopies, nil
}

// stageFunc takes the regular file entry e, open as f (an O_PATH
// descriptor), to stage its content, and closes f.
type stageFunc func(e *layers.Entry, f *os.File) error

// read walks the upper directory dir; stage, when set, is given every
// regular file the upper directory holds in full.
func read(dir string, base []layers.Entry, stage stageFunc) (*reader, error) {
	return (&reader{base: base, stage: stage}).read(dir)
}

// read walks the upper directory dir as r says: relative to r.base, or raw.
func (r *reader) read(dir string) (*reader, error) {
	base := r.base
	r.metacopies, r.index = map[string]string{}, make(map[string]int, len(base))
	r.links, r.m = map[[2]uint64]string{}, &layers.Manifest{}
	for i := range base {
		r.index[base[i].Path] = i
	}
	d, err := openDir(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	root, _, err := layers.EntryBeneath(beneath.At{Dir: int(d.Fd()), Name: "."}, "/")
	if err != nil {
		return nil, fmt.Errorf("upper dir: %w", err)
	}
	if !r.raw {
		root.Xattrs = OwnXattrs(root.Xattrs)
	}
	r.m.Entries = append(r.m.Entries, root)
	if err := r.walk(d, "/", "/", false); err != nil {
		return nil, err
	}
	r.m.Sort()
	if !r.raw {
		r.dropLauncherDirs()
	}
	return r, nil
}

// openDir opens the upper directory dir itself for reading. Its path is
// the host's (containers/NAME/upper); everything below it is reached from
// the descriptor.
func openDir(dir string) (*os.File, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("upper dir: %w", &os.PathError{Op: "open", Path: dir, Err: err})
	}
	return os.NewFile(uintptr(fd), dir), nil
}

type reader struct {
	base  []layers.Entry
	index map[string]int // base path -> index
	// links maps dev, ino to the first path of a hardlink group.
	links map[[2]uint64]string
	m     *layers.Manifest
	// metacopies maps each metacopy file to the base path of its data.
	metacopies map[string]string
	stage      stageFunc
	// raw reads the upper directory as the plain tree it is (see
	// Snapshot), not as a layer relative to base.
	raw bool
}

// walk adds the children of directory rel, open as d, whose content below
// is found at lower ("" when nothing is below). whole is set inside a
// redirected directory: the layer then holds the directory's entire
// content.
//
// The attack it stops: the container swaps a name for a symbolic link to
// a host file or directory (renameat2 RENAME_EXCHANGE in a loop) between
// the moment the walk looks at it and the moment it opens it, so that a
// walk by path reads the host's file into a template or lists the host's
// directory. Every entry is looked at and opened from its parent's
// descriptor without following a symbolic link (package beneath), and a
// directory or file is used only if what was opened is what was looked at.
// Nothing is resolved from a path, so the tree may be of any depth.
func (r *reader) walk(d *os.File, rel, lower string, whole bool) error {
	names, err := d.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("upper dir %q: %w", rel, err)
	}
	slices.Sort(names)
	for _, name := range names {
		childLower := ""
		if lower != "" {
			childLower = path.Join(lower, name)
		}
		at := beneath.At{Dir: int(d.Fd()), Name: name}
		if err := r.child(at, path.Join(rel, name), lower, childLower, whole); err != nil {
			return err
		}
	}
	if whole && lower != "" {
		r.addBelow(rel, lower, names)
	}
	return nil
}

// child adds the entry rel, found at at (and, for a directory, what is
// below it). parentLower and lower are where its parent and itself are
// found below.
func (r *reader) child(at beneath.At, rel, parentLower, lower string, whole bool) error {
	e, st, err := layers.EntryBeneath(at, rel)
	if err != nil {
		return fmt.Errorf("upper dir: %q: %w", rel, err)
	}
	if r.raw {
		return r.rawChild(at, e, &st)
	}
	var ovl map[string]string
	e.Xattrs, ovl = overlayXattrs(e.Xattrs)
	redirect, redirected := ovl[XattrRedirect]
	if redirected {
		lower = resolveRedirect(parentLower, redirect)
	}
	switch {
	case e.Type == layers.TypeChar && e.Major == 0 && e.Minor == 0:
		if !whole {
			r.m.Entries = append(r.m.Entries, layers.Entry{Path: rel, Type: layers.TypeWhiteout})
		}
		return nil
	case e.Type == layers.TypeDir:
		if ovl[XattrOpaque] == "y" {
			lower = ""
			e.Opaque = !whole
		}
		e.Opaque = e.Opaque || (redirected && !whole)
		r.m.Entries = append(r.m.Entries, e)
		sub, err := openSame(at, rel, &st, unix.O_RDONLY|unix.O_DIRECTORY)
		if err != nil {
			return err
		}
		defer sub.Close()
		return r.walk(sub, rel, lower, whole || redirected)
	case e.Type == layers.TypeReg:
		if err := r.fileData(at, &e, &st, lower, ovl); err != nil {
			return err
		}
	}
	r.m.Entries = append(r.m.Entries, e)
	return nil
}

// openSame opens the entry at with flags (never following it) and fails
// unless it is still the inode st describes: the container replaced it
// in between.
func openSame(at beneath.At, rel string, st *unix.Stat_t, flags int) (*os.File, error) {
	f, err := at.Open(flags|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("upper dir: %q: %w", rel, err)
	}
	var now unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &now); err != nil {
		f.Close()
		return nil, fmt.Errorf("upper dir: %q: %w", rel, err)
	}
	if !sameInode(&now, st) {
		f.Close()
		return nil, replaced(rel)
	}
	return f, nil
}

// sameInode reports whether a and b describe the same inode, of one type.
func sameInode(a, b *unix.Stat_t) bool {
	return a.Dev == b.Dev && a.Ino == b.Ino && a.Mode&unix.S_IFMT == b.Mode&unix.S_IFMT
}

// replaced is the error for an entry that the container replaced while it
// was read.
func replaced(rel string) error {
	return fmt.Errorf("upper dir: %q was replaced while it was read (is the container running?)", rel)
}

// fileData fills in where a regular file's data is: below for a metacopy
// file, else in the upper file itself (a hardlink to an earlier one, or
// content to stage).
func (r *reader) fileData(at beneath.At, e *layers.Entry, st *unix.Stat_t, lower string, ovl map[string]string) error {
	if _, meta := ovl[XattrMetacopy]; meta {
		i, ok := r.index[lower]
		if lower == "" || !ok || r.base[i].Type != layers.TypeReg {
			return fmt.Errorf("upper dir: metacopy file %q has no data below (looked at %q)", e.Path, lower)
		}
		e.Digest, e.Size = r.base[i].Digest, r.base[i].Size
		r.metacopies[e.Path] = lower
		return nil
	}
	key := [2]uint64{st.Dev, st.Ino}
	if leader, ok := r.links[key]; ok && st.Nlink > 1 {
		e.LinkTo = leader
		return nil
	}
	if st.Nlink > 1 {
		r.links[key] = e.Path
	}
	if r.stage == nil {
		return nil
	}
	f, err := openSame(at, e.Path, st, unix.O_PATH)
	if err != nil {
		return err
	}
	return r.stage(e, f)
}

// resolveRedirect returns the lower path a redirect names: absolute, or a
// name in the parent's lower directory.
func resolveRedirect(parentLower, redirect string) string {
	if path.IsAbs(redirect) {
		return path.Clean(redirect)
	}
	if parentLower == "" {
		return ""
	}
	return path.Join(parentLower, redirect)
}

// addBelow adds, under directory rel, the base entries below lower whose
// first name is not in the upper directory (names), as the union shows
// them inside a redirected directory.
func (r *reader) addBelow(rel, lower string, names []string) {
	i, ok := r.index[lower]
	if !ok || r.base[i].Type != layers.TypeDir {
		return
	}
	inUpper := map[string]bool{}
	for _, n := range names {
		inUpper[n] = true
	}
	prefix := lower
	if prefix == "/" {
		prefix = ""
	}
	for j := i + 1; j < len(r.base) && layers.IsUnder(r.base[j].Path, lower); j++ {
		sub := r.base[j].Path[len(prefix):] // "/name/..."
		first, _, _ := strings.Cut(sub[1:], "/")
		if inUpper[first] {
			continue
		}
		e := r.base[j]
		e.Path = path.Join(rel, sub)
		if e.LinkTo != "" && layers.IsUnder(e.LinkTo, lower) {
			e.LinkTo = path.Join(rel, e.LinkTo[len(prefix):])
		} else {
			e.LinkTo = ""
		}
		r.m.Entries = append(r.m.Entries, e)
	}
}
