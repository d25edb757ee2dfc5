// Package du measures disk use as du does: allocated blocks, not apparent
// sizes, each inode counted once however many hardlinks name it, and only
// the filesystem a tree starts on (du -x).
package du

import (
	"io/fs"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Usage is what a tree takes.
type Usage struct {
	// Disk is the bytes allocated to every entry below the root, the root
	// included.
	Disk int64
	// Apparent is the sum of the sizes of the regular files.
	Apparent int64
	// Files counts the regular files (inodes, not names).
	Files int
}

// Counter measures several trees and files without counting an inode twice,
// as a store's objects are also named by its layers' data directories.
type Counter struct {
	seen map[[2]uint64]bool
}

// NewCounter returns a Counter that has counted nothing yet.
func NewCounter() *Counter { return &Counter{seen: map[[2]uint64]bool{}} }

// Tree measures the tree at dir alone.
func Tree(dir string) Usage { return NewCounter().Tree(dir) }

// Tree measures the tree at dir, leaving out inodes counted before and
// whatever is mounted below dir. Entries that vanish or cannot be read
// while it walks are left out.
func (c *Counter) Tree(dir string) Usage {
	var u Usage
	var root unix.Stat_t
	if unix.Lstat(dir, &root) != nil {
		return u
	}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		var st unix.Stat_t
		if err != nil || unix.Lstat(p, &st) != nil {
			return nil
		}
		if st.Dev != root.Dev {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !c.count(&st) {
			return nil
		}
		u.Disk += st.Blocks * 512
		if st.Mode&unix.S_IFMT == unix.S_IFREG {
			u.Apparent += st.Size
			u.Files++
		}
		return nil
	})
	return u
}

// File is the bytes allocated to one file: 0 when it was counted before or
// cannot be read.
func (c *Counter) File(path string) int64 {
	var st unix.Stat_t
	if unix.Lstat(path, &st) != nil || !c.count(&st) {
		return 0
	}
	return st.Blocks * 512
}

// count records st's inode and reports whether it is new.
func (c *Counter) count(st *unix.Stat_t) bool {
	key := [2]uint64{st.Dev, st.Ino}
	if c.seen[key] {
		return false
	}
	c.seen[key] = true
	return true
}
