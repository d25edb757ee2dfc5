package upper

import (
	"fmt"
	"strings"

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

// SetMetadata gives the file at path e's owner, xattrs (escaped), mode and
// mtime, in that order: chown clears setuid bits and file capabilities, so
// they come after it. Symlinks keep their mode.
func SetMetadata(path string, e *layers.Entry) error {
	if err := unix.Lchown(path, int(e.UID), int(e.GID)); err != nil {
		return fmt.Errorf("chown %s: %w", path, err)
	}
	for _, x := range e.Xattrs {
		if err := unix.Lsetxattr(path, EscapeXattr(x.Name), x.Value, 0); err != nil {
			return fmt.Errorf("set xattr %s on %s: %w", x.Name, path, err)
		}
	}
	if e.Type != layers.TypeSymlink {
		if err := unix.Chmod(path, e.Mode); err != nil {
			return fmt.Errorf("chmod %s: %w", path, err)
		}
	}
	t := unix.NsecToTimespec(e.Mtime)
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, path, []unix.Timespec{t, t}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set mtime of %s: %w", path, err)
	}
	return nil
}
