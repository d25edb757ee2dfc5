// Package du measures disk use as du does: allocated blocks, not apparent
// sizes, each inode counted once however many hardlinks name it.
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

// Tree measures the tree at dir. Entries that vanish or cannot be read
// while it walks are left out.
func Tree(dir string) Usage {
	var u Usage
	seen := map[[2]uint64]bool{}
	filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		var st unix.Stat_t
		if err != nil || unix.Lstat(p, &st) != nil {
			return nil
		}
		key := [2]uint64{st.Dev, st.Ino}
		if seen[key] {
			return nil
		}
		seen[key] = true
		u.Disk += st.Blocks * 512
		if st.Mode&unix.S_IFMT == unix.S_IFREG {
			u.Apparent += st.Size
			u.Files++
		}
		return nil
	})
	return u
}

// File is the bytes allocated to one file (0 when it cannot be read).
func File(path string) int64 {
	var st unix.Stat_t
	if unix.Lstat(path, &st) != nil {
		return 0
	}
	return st.Blocks * 512
}
