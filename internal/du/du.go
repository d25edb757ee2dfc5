// Package du measures disk use as du does: allocated blocks, not apparent
// sizes, each inode counted once however many hardlinks name it, and only
// the filesystem a tree starts on (du -x).
package du

import (
	"os"

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
//
// The trees measured include containers' upper directories, which the
// container changes while they are walked. The attack this stops: the
// container swaps a directory for a symbolic link to the host's "/" just
// as a walk by path reads it, and every ps then walks (and counts) the
// host's whole filesystem. Each directory is opened from its parent's
// descriptor without following a symbolic link, and each entry is
// stat'ed there without following it; nothing is resolved from a path, so
// any depth is measured too.
func (c *Counter) Tree(dir string) Usage {
	var u Usage
	var root unix.Stat_t
	if unix.Lstat(dir, &root) != nil {
		return u
	}
	c.add(&u, &root)
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return u
	}
	c.walk(os.NewFile(uintptr(fd), dir), root.Dev, &u)
	return u
}

// walk adds the entries below the open directory d on device dev to u,
// and closes d.
func (c *Counter) walk(d *os.File, dev uint64, u *Usage) {
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	dfd := int(d.Fd())
	for _, name := range names {
		var st unix.Stat_t
		if unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) != nil || st.Dev != dev {
			continue
		}
		c.add(u, &st)
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			continue
		}
		fd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err == nil {
			c.walk(os.NewFile(uintptr(fd), name), dev, u)
		}
	}
}

// add counts the inode st describes into u, unless it was counted before.
func (c *Counter) add(u *Usage, st *unix.Stat_t) {
	if !c.count(st) {
		return
	}
	u.Disk += st.Blocks * 512
	if st.Mode&unix.S_IFMT == unix.S_IFREG {
		u.Apparent += st.Size
		u.Files++
	}
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
