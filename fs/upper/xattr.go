package upper

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/acetate/acetate/internal/beneath"
	"github.com/acetate/acetate/layers"
	"golang.org/x/sys/unix"
)

// The overlayfs xattrs of the upper format.
const (
	// XattrPrefix starts every xattr that overlayfs interprets.
	XattrPrefix = "trusted.overlay."
	// XattrOpaque is "y" on a directory that hides the directories below.
	XattrOpaque = XattrPrefix + "opaque"
	// XattrRedirect names where the content of a renamed directory or a
	// metacopy file is found below: an absolute path, or a name in the
	// parent's lower directory.
	XattrRedirect = XattrPrefix + "redirect"
	// XattrMetacopy marks a file whose data is found below.
	XattrMetacopy = XattrPrefix + "metacopy"
	// XattrOrigin records the lower inode a file was copied up from.
	XattrOrigin = XattrPrefix + "origin"
	// escapedPrefix is how a file's own trusted.overlay.* xattr is stored.
	escapedPrefix = XattrPrefix + "overlay."
)

// overlayXattrs splits xattrs read from disk into the file's own, with
// escaped names restored, and those overlayfs interprets, by name.
func overlayXattrs(xs []layers.Xattr) (own []layers.Xattr, ovl map[string]string) {
	ovl = map[string]string{}
	for _, x := range xs {
		switch {
		case strings.HasPrefix(x.Name, escapedPrefix):
			own = append(own, layers.Xattr{Name: XattrPrefix + x.Name[len(escapedPrefix):], Value: x.Value})
		case strings.HasPrefix(x.Name, XattrPrefix):
			ovl[x.Name] = string(x.Value)
		default:
			own = append(own, x)
		}
	}
	return own, ovl
}

// OwnXattrs returns xs without the xattrs overlayfs interprets, escaped
// names restored: the file's own extended attributes.
func OwnXattrs(xs []layers.Xattr) []layers.Xattr {
	own, _ := overlayXattrs(xs)
	return own
}

// EscapeXattr returns the name under which a file's own xattr is stored in
// an overlayfs layer: trusted.overlay.* names get one more "overlay.".
func EscapeXattr(name string) string {
	if strings.HasPrefix(name, XattrPrefix) {
		return escapedPrefix + name[len(XattrPrefix):]
	}
	return name
}

// SetMetadata gives the file at path, a host path (a new upper directory,
// a layer's metadata tree), e's owner, xattrs (escaped), mode and mtime.
func SetMetadata(path string, e *layers.Entry) error {
	parent, err := openDir(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer parent.Close()
	xs := make([]layers.Xattr, len(e.Xattrs))
	for i, x := range e.Xattrs {
		xs[i] = layers.Xattr{Name: EscapeXattr(x.Name), Value: x.Value}
	}
	t := unix.NsecToTimespec(e.Mtime)
	m := meta{uid: e.UID, gid: e.GID, mode: e.Mode, symlink: e.Type == layers.TypeSymlink, xattrs: xs,
		times: []unix.Timespec{t, t}}
	if err := m.apply(beneath.At{Dir: int(parent.Fd()), Name: filepath.Base(path)}); err != nil {
		return fmt.Errorf("set metadata of %s: %w", path, err)
	}
	return nil
}

// meta is what a tool gives an entry it makes in an upper directory.
type meta struct {
	uid, gid, mode uint32
	symlink        bool
	// xattrs are named as stored on disk.
	xattrs []layers.Xattr
	// times are the access and modification times.
	times []unix.Timespec
}

// apply gives the entry at m's owner, xattrs, mode and times, in that
// order: chown clears set-uid bits and file capabilities, so they come
// after it. A symbolic link keeps its mode. Nothing is followed.
func (m *meta) apply(at beneath.At) error {
	if err := at.Chown(int(m.uid), int(m.gid)); err != nil {
		return err
	}
	for _, x := range m.xattrs {
		if err := at.Setxattr(x.Name, x.Value, 0); err != nil {
			return err
		}
	}
	if !m.symlink {
		if err := at.Chmod(m.mode); err != nil {
			return err
		}
	}
	return at.Utimes(m.times)
}
