package fuse

import (
	"path"
	"strings"

	"github.com/acetate/acetate/internal/beneath"
	"golang.org/x/sys/unix"
)

// The overlayfs xattrs of the upper format.
const (
	xattrPrefix   = "trusted.overlay."
	xattrOpaque   = xattrPrefix + "opaque"
	xattrRedirect = xattrPrefix + "redirect"
	xattrMetacopy = xattrPrefix + "metacopy"
)

// isWhiteout reports whether st is an overlayfs whiteout.
func isWhiteout(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}

func isOpaque(a beneath.At) bool {
	v, ok := a.Xattr(xattrOpaque)
	return ok && v == "y"
}

func isMetacopy(a beneath.At) bool {
	_, ok := a.Xattr(xattrMetacopy)
	return ok
}

// lowerOfChild returns the lower path that shows through the upper entry a
// (a directory or metacopy file named name), given the lower path of its
// parent directory ("" when nothing below shows): a redirect, or the same
// name below the parent's lower directory.
func lowerOfChild(a beneath.At, parentLower, name string) string {
	if r, ok := a.Xattr(xattrRedirect); ok {
		if strings.HasPrefix(r, "/") {
			return r
		}
		if parentLower == "" {
			return ""
		}
		return path.Join(parentLower, r)
	}
	if parentLower == "" {
		return ""
	}
	return path.Join(parentLower, name)
}

// isOverlayXattr reports whether name is reserved for the upper format and
// hidden from the merged view.
func isOverlayXattr(name string) bool { return strings.HasPrefix(name, xattrPrefix) }
