package fuse

import (
	"context"
	"errors"
	"strings"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"golang.org/x/sys/unix"
)

var (
	_ = (fs.NodeGetxattrer)((*node)(nil))
	_ = (fs.NodeListxattrer)((*node)(nil))
	_ = (fs.NodeSetxattrer)((*node)(nil))
	_ = (fs.NodeRemovexattrer)((*node)(nil))
)

// escapedPrefix is how a file's own trusted.overlay.* xattr is stored in
// the upper directory, as overlayfs stores it.
const escapedPrefix = xattrPrefix + "overlay."

func escapeXattr(name string) string {
	if isOverlayXattr(name) {
		return escapedPrefix + name[len(xattrPrefix):]
	}
	return name
}

func isEscaped(name string) bool { return strings.HasPrefix(name, escapedPrefix) }

// ownXattr returns the name a stored xattr has in the merged view, and
// false for the xattrs of the upper format itself.
func ownXattr(stored string) (string, bool) {
	switch {
	case isEscaped(stored):
		return xattrPrefix + stored[len(escapedPrefix):], true
	case isOverlayXattr(stored):
		return "", false
	}
	return stored, true
}

func listxattr(p string) ([]string, error) {
	buf := make([]byte, 1024)
	for {
		n, err := unix.Llistxattr(p, buf)
		if errors.Is(err, unix.ERANGE) {
			buf = make([]byte, len(buf)*4)
			continue
		}
		if err != nil {
			return nil, err
		}
		var names []string
		for _, s := range strings.Split(string(buf[:n]), "\x00") {
			if s != "" {
				names = append(names, s)
			}
		}
		return names, nil
	}
}

// inUpper reports whether the node has an upper file that carries its
// metadata.
func (n *node) inUpper() bool {
	var st syscall.Stat_t
	return syscall.Lstat(n.upperPath(), &st) == nil
}

// Getxattr implements fs.NodeGetxattrer.
func (n *node) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	// One call where the kernel asks most (security.capability before
	// writes and chowns): the upper file answers unless it is not there.
	sz, err := unix.Lgetxattr(n.upperPath(), escapeXattr(attr), dest)
	if !errors.Is(err, syscall.ENOENT) && !errors.Is(err, syscall.ENOTDIR) {
		return uint32(sz), fs.ToErrno(err)
	}
	e, ok := n.u.lower.Lookup(n.lower)
	if !ok {
		return 0, syscall.ENOENT
	}
	for _, x := range e.Xattrs {
		if x.Name == attr {
			if len(dest) < len(x.Value) {
				return uint32(len(x.Value)), syscall.ERANGE
			}
			return uint32(copy(dest, x.Value)), 0
		}
	}
	return 0, syscall.ENODATA
}

// Listxattr implements fs.NodeListxattrer.
func (n *node) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	var names []string
	if n.inUpper() {
		stored, err := listxattr(n.upperPath())
		if err != nil {
			return 0, fs.ToErrno(err)
		}
		for _, s := range stored {
			if name, ok := ownXattr(s); ok {
				names = append(names, name)
			}
		}
	} else if e, ok := n.u.lower.Lookup(n.lower); ok {
		for _, x := range e.Xattrs {
			names = append(names, x.Name)
		}
	}
	var b []byte
	for _, name := range names {
		b = append(append(b, name...), 0)
	}
	if len(dest) < len(b) {
		return uint32(len(b)), syscall.ERANGE
	}
	return uint32(copy(dest, b)), 0
}

// Setxattr implements fs.NodeSetxattrer: the file is copied up first.
func (n *node) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	return n.changeXattr(func(p string) error { return unix.Lsetxattr(p, escapeXattr(attr), data, int(flags)) })
}

// Removexattr implements fs.NodeRemovexattrer: the file is copied up first.
func (n *node) Removexattr(ctx context.Context, attr string) syscall.Errno {
	return n.changeXattr(func(p string) error { return unix.Lremovexattr(p, escapeXattr(attr)) })
}

func (n *node) changeXattr(change func(p string) error) syscall.Errno {
	if n.u.readOnly {
		return syscall.EROFS
	}
	n.u.mu.Lock()
	defer n.u.mu.Unlock()
	if err := n.copyUp(true); err != nil {
		return fs.ToErrno(err)
	}
	return fs.ToErrno(change(n.upperPath()))
}
