package upper

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

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
// has there, so every entry's parent is too.
func Read(dir string, base []layers.Entry) (*layers.Manifest, error) {
	r, err := read(dir, base)
	if err != nil {
		return nil, err
	}
	return r.m, nil
}

// Metacopies returns the metacopy files of the upper directory dir, by
// path, each with the path in base its data comes from.
func Metacopies(dir string, base []layers.Entry) (map[string]string, error) {
	r, err := read(dir, base)
	if err != nil {
		return nil, err
	}
	return r.metacopies, nil
}

func read(dir string, base []layers.Entry) (*reader, error) {
	r := &reader{metacopies: map[string]string{}, dir: filepath.Clean(dir), base: base, index: make(map[string]int, len(base)),
		links: map[[2]uint64]string{}, m: &layers.Manifest{}}
	for i := range base {
		r.index[base[i].Path] = i
	}
	root, err := layers.EntryAt(r.dir, "/")
	if err != nil {
		return nil, fmt.Errorf("upper dir: %w", err)
	}
	if root.Type != layers.TypeDir {
		return nil, fmt.Errorf("upper dir %s: not a directory", dir)
	}
	root.Xattrs = OwnXattrs(root.Xattrs)
	r.m.Entries = append(r.m.Entries, root)
	if err := r.walk("/", "/", false); err != nil {
		return nil, err
	}
	r.m.Sort()
	return r, nil
}

type reader struct {
	dir   string
	base  []layers.Entry
	index map[string]int       // base path -> index
	links map[[2]uint64]string // dev, ino -> first path of a hardlink group
	m     *layers.Manifest
	// metacopies maps each metacopy file to the base path of its data.
	metacopies map[string]string
}

// walk adds the children of directory rel, whose content below is found at
// lower ("" when nothing is below). whole is set inside a redirected
// directory: the layer then holds the directory's entire content.
func (r *reader) walk(rel, lower string, whole bool) error {
	abs := filepath.Join(r.dir, rel)
	f, err := os.Open(abs)
	if err != nil {
		return fmt.Errorf("upper dir: %w", err)
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return fmt.Errorf("upper dir %s: %w", abs, err)
	}
	slices.Sort(names)
	for _, name := range names {
		childLower := ""
		if lower != "" {
			childLower = path.Join(lower, name)
		}
		if err := r.child(path.Join(rel, name), lower, childLower, whole); err != nil {
			return err
		}
	}
	if whole && lower != "" {
		r.addBelow(rel, lower, names)
	}
	return nil
}

// child adds the entry rel (and, for a directory, what is below it).
// parentLower and lower are where its parent and itself are found below.
func (r *reader) child(rel, parentLower, lower string, whole bool) error {
	abs := filepath.Join(r.dir, rel)
	e, err := layers.EntryAt(abs, rel)
	if err != nil {
		return fmt.Errorf("upper dir: %w", err)
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
		return r.walk(rel, lower, whole || redirected)
	case e.Type == layers.TypeReg:
		if err := r.fileData(&e, abs, lower, ovl); err != nil {
			return err
		}
	}
	r.m.Entries = append(r.m.Entries, e)
	return nil
}

// fileData fills in where a regular file's data is: below for a metacopy
// file, else in the upper file itself (a hardlink to an earlier one, or
// content for Layer to stage).
func (r *reader) fileData(e *layers.Entry, abs, lower string, ovl map[string]string) error {
	if _, meta := ovl[XattrMetacopy]; meta {
		i, ok := r.index[lower]
		if lower == "" || !ok || r.base[i].Type != layers.TypeReg {
			return fmt.Errorf("upper dir: metacopy file %s has no data below (looked at %q)", e.Path, lower)
		}
		e.Digest, e.Size = r.base[i].Digest, r.base[i].Size
		r.metacopies[e.Path] = lower
		return nil
	}
	var st unix.Stat_t
	if err := unix.Lstat(abs, &st); err != nil {
		return fmt.Errorf("upper dir: %w", err)
	}
	if st.Nlink < 2 {
		return nil
	}
	key := [2]uint64{st.Dev, st.Ino}
	if leader, ok := r.links[key]; ok {
		e.LinkTo = leader
	} else {
		r.links[key] = e.Path
	}
	return nil
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
