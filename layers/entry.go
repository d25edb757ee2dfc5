package layers

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
)

// Type is the kind of a tree entry.
type Type uint8

// Entry types. TypeWhiteout marks a path deleted relative to lower layers,
// with the same meaning as an overlayfs whiteout.
const (
	TypeDir Type = iota + 1
	TypeReg
	TypeSymlink
	TypeChar
	TypeBlock
	TypeFifo
	TypeSocket
	TypeWhiteout
)

var typeNames = map[Type]string{
	TypeDir: "dir", TypeReg: "file", TypeSymlink: "symlink", TypeChar: "char",
	TypeBlock: "block", TypeFifo: "fifo", TypeSocket: "socket", TypeWhiteout: "whiteout",
}

// String names the type as the CLI prints it.
func (t Type) String() string {
	if s, ok := typeNames[t]; ok {
		return s
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Xattr is one extended attribute of an entry.
type Xattr struct {
	Name  string
	Value []byte
}

// Entry is the metadata of one path in a layer.
type Entry struct {
	// Path is absolute and clean: "/" is the root, "/bin/ls" a file.
	Path string
	Type Type
	// Mode holds the permission bits, including setuid, setgid and sticky (07777).
	Mode uint32
	UID  uint32
	GID  uint32
	// Mtime is the modification time in nanoseconds since the Unix epoch.
	Mtime int64
	// Size is the content length of a regular file.
	Size int64
	// Digest names the content object of a regular file.
	Digest digest.Digest
	// LinkTo, for a regular file that is a hardlink, is the path of the first
	// member (in manifest order) of its hardlink group in the same layer.
	LinkTo string
	// Target is the target of a symlink, as stored (never resolved).
	Target string
	// Major and Minor are the device numbers of a char or block device.
	Major, Minor uint32
	// Opaque marks a directory that hides everything below it in lower layers.
	Opaque bool
	// Xattrs are sorted by name.
	Xattrs []Xattr

	// group is a hardlink group key while a tree is being read.
	group uint64
}

// Parent returns the parent directory of a path ("/" for "/").
func Parent(p string) string {
	return path.Dir(p)
}

// CleanPath turns a path found in a tar header or given by a user into the
// store's absolute form, and rejects anything that would leave the root.
func CleanPath(name string) (string, error) {
	if strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("absolute path %q", name)
	}
	for _, c := range strings.Split(name, "/") {
		if c == ".." {
			return "", fmt.Errorf("path %q contains \"..\"", name)
		}
	}
	if strings.IndexByte(name, 0) >= 0 {
		return "", fmt.Errorf("path %q contains a NUL byte", name)
	}
	return path.Clean("/" + name), nil
}

// ComparePaths orders paths so that every directory comes immediately before
// its descendants: bytewise, with '/' sorting before every other byte.
func ComparePaths(a, b string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		ca, cb := a[i], b[i]
		switch {
		case ca == cb:
			continue
		case ca == '/':
			return -1
		case cb == '/':
			return 1
		case ca < cb:
			return -1
		default:
			return 1
		}
	}
	return len(a) - len(b)
}

// IsUnder reports whether p is dir itself or lies below it.
func IsUnder(p, dir string) bool {
	if dir == "/" || p == dir {
		return true
	}
	return strings.HasPrefix(p, dir) && len(p) > len(dir) && p[len(dir)] == '/'
}

// SameContent reports whether two entries describe the same file: same type,
// metadata and content. Hardlink grouping is not compared.
func SameContent(a, b *Entry) bool {
	if a.Type != b.Type || a.Mode != b.Mode || a.UID != b.UID || a.GID != b.GID ||
		a.Mtime != b.Mtime || a.Size != b.Size || a.Digest != b.Digest ||
		a.Target != b.Target || a.Major != b.Major || a.Minor != b.Minor ||
		a.Opaque != b.Opaque || len(a.Xattrs) != len(b.Xattrs) {
		return false
	}
	for i := range a.Xattrs {
		if a.Xattrs[i].Name != b.Xattrs[i].Name || string(a.Xattrs[i].Value) != string(b.Xattrs[i].Value) {
			return false
		}
	}
	return true
}

func sortXattrs(xs []Xattr) {
	slices.SortFunc(xs, func(a, b Xattr) int { return strings.Compare(a.Name, b.Name) })
}
