package fuse

import (
	"os"

	"github.com/acetate/acetate/layers"
)

// Entry is the metadata of one path in the lower layers.
type Entry struct {
	// Mode holds the file type (syscall.S_IFMT bits) and permission bits.
	Mode     uint32
	UID, GID uint32
	Size     int64
	// Mtime is the modification time in nanoseconds since the Unix epoch.
	Mtime int64
	Rdev  uint64
	Nlink uint32
	// Ino is unique within the Lower, shared by hardlinks, never 0 or 1.
	Ino uint64
	// Target is the target of a symlink.
	Target string
	// Xattrs are the entry's extended attributes, sorted by name.
	Xattrs []layers.Xattr
}

// Lower is the read-only merged view of the layers below the upper
// directory. Paths are absolute and clean ("/", "/etc/passwd"). A Lower
// never changes while mounted, so its answers may be cached forever.
type Lower interface {
	// Lookup returns the entry at path.
	Lookup(path string) (*Entry, bool)
	// ReadDir returns the names in directory path, sorted.
	ReadDir(path string) []string
	// Links returns every path of the hardlink group of the regular file
	// at path, path included.
	Links(path string) []string
	// Open opens the data of the regular file at path for reading. path may
	// also be an overlayfs redirect found on a metacopy file in the upper
	// directory. The file must be opened O_RDONLY.
	Open(path string) (*os.File, error)
}
