package fuse

import (
	"errors"
	"strings"
	"syscall"

	"github.com/acetate/acetate/internal/beneath"
	"github.com/hanwen/go-fuse/v2/fs"
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

// Getxattr copies the value of xattr attr into dest, or when dest is
// empty, returns its size.
func (n *node) Getxattr(attr string, dest []byte) (uint32, syscall.Errno) {
	// One call where the kernel asks most (security.capability before
	// writes and chowns), none where the directory is the template's: the
	// upper file answers unless it is not there.
	a, err := n.upperAtKnown()
	if err == nil {
		defer a.Close()
		var sz int
		sz, err = a.Getxattr(escapeXattr(attr), dest)
		if err == nil {
			return uint32(sz), 0
		}
	}
	if !errors.Is(err, syscall.ENOENT) && !errors.Is(err, syscall.ENOTDIR) {
		return 0, fs.ToErrno(err)
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

// Listxattr copies the names of the node's xattrs into dest, or when dest
// is empty, returns their size.
func (n *node) Listxattr(dest []byte) (uint32, syscall.Errno) {
	names, errno := n.xattrNames()
	if errno != 0 {
		return 0, errno
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

// xattrNames lists the node's own xattrs: the upper file's, without those
// of the upper format, or the lower entry's.
func (n *node) xattrNames() ([]string, syscall.Errno) {
	a, err := n.upperAt()
	if err == nil {
		defer a.Close()
		var stored []string
		if stored, err = a.Listxattr(); err == nil {
			var names []string
			for _, s := range stored {
				if name, ok := ownXattr(s); ok {
					names = append(names, name)
				}
			}
			return names, 0
		}
	}
	if !errors.Is(err, syscall.ENOENT) && !errors.Is(err, syscall.ENOTDIR) {
		return nil, fs.ToErrno(err)
	}
	var names []string
	if e, ok := n.u.lower.Lookup(n.lower); ok {
		for _, x := range e.Xattrs {
			names = append(names, x.Name)
		}
	}
	return names, 0
}

// Setxattr sets xattr attr: the file is copied up first.
func (n *node) Setxattr(attr string, data []byte, flags uint32) syscall.Errno {
	return n.changeXattr(func(a beneath.At) error { return a.Setxattr(escapeXattr(attr), data, int(flags)) })
}

// Removexattr removes xattr attr: the file is copied up first.
func (n *node) Removexattr(attr string) syscall.Errno {
	return n.changeXattr(func(a beneath.At) error { return a.Removexattr(escapeXattr(attr)) })
}

func (n *node) changeXattr(change func(a beneath.At) error) syscall.Errno {
	if n.u.readOnly {
		return syscall.EROFS
	}
	n.u.mu.Lock()
	defer n.u.mu.Unlock()
	if err := n.copyUp(true); err != nil {
		return fs.ToErrno(err)
	}
	a, err := n.upperAt()
	if err != nil {
		return fs.ToErrno(err)
	}
	defer a.Close()
	return fs.ToErrno(change(a))
}
