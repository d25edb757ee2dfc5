package fuse

import (
	"errors"
	"path"
	"strings"
	"syscall"

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
func isWhiteout(st *syscall.Stat_t) bool {
	return st.Mode&syscall.S_IFMT == syscall.S_IFCHR && st.Rdev == 0
}

// getxattr returns the value of xattr name of the file at p (not following
// symlinks), and false when it has none.
func getxattr(p, name string) (string, bool) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Lgetxattr(p, name, buf)
		if errors.Is(err, unix.ERANGE) {
			buf = make([]byte, len(buf)*4)
			continue
		}
		if err != nil {
			return "", false
		}
		return string(buf[:n]), true
	}
}

func isOpaque(p string) bool {
	v, ok := getxattr(p, xattrOpaque)
	return ok && v == "y"
}

func isMetacopy(p string) bool {
	_, ok := getxattr(p, xattrMetacopy)
	return ok
}

// lowerOfChild returns the lower path that shows through the upper entry at
// up (a directory or metacopy file named name), given the lower path of its
// parent directory ("" when nothing below shows): a redirect, or the same
// name below the parent's lower directory.
func lowerOfChild(up, parentLower, name string) string {
	if r, ok := getxattr(up, xattrRedirect); ok {
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
