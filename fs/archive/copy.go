package archive

import (
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/acetate/acetate/internal/beneath"
	"golang.org/x/sys/unix"
)

// Place is where the paths of one side of a copy resolve: the host's own
// (the user's paths, which follow the usual rules), or a container's
// root.
type Place struct {
	// root is the descriptor of a container's root, or -1 for the host.
	root int
}

// Host is the host's own paths.
func Host() Place { return Place{root: -1} }

// InRoot is the paths of the container whose root is the directory
// rootfd: each resolves inside it, as the container resolves its own (see
// beneath.OpenInRoot), so that a symbolic link to /etc/shadow or to
// ../../.. leads to the container's file, never the host's. Device nodes
// may be made there (a container's root is mounted nodev).
func InRoot(rootfd int) Place { return Place{root: rootfd} }

// open opens p in the place (a last symbolic link followed, as the place
// resolves it).
func (pl Place) open(p string, flags int) (int, error) {
	if pl.root >= 0 {
		return beneath.OpenInRoot(pl.root, p, flags)
	}
	fd, err := unix.Open(p, flags|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &pathError{p, err}
	}
	return fd, nil
}

// show names p in the place for an error.
func (pl Place) show(p string) string {
	if pl.root >= 0 {
		return "container path " + show(p)
	}
	return show(p)
}

// pathError is an error of the host's paths, without the *os.PathError
// "open" prefix the user did not ask for.
type pathError struct {
	path string
	err  error
}

func (e *pathError) Error() string { return e.err.Error() }
func (e *pathError) Unwrap() error { return e.err }

// source is the entry a copy reads: at, the top entry's name as src names
// it ("." when src asks for a directory's contents, "dir/."), and whether
// it is a directory.
type source struct {
	at    beneath.At
	name  string
	isDir bool
}

// openSource resolves src in from. Its last component is not followed (a
// symbolic link is copied as a link, as cp -a and docker cp do), unless
// src ends with "/" or "/.".
func openSource(from Place, src string) (source, error) {
	clean := path.Clean(src)
	s := source{name: path.Base(clean)}
	fail := func(err error) (source, error) {
		return source{}, fmt.Errorf("%s: %w", from.show(src), err)
	}
	contents := strings.HasSuffix(src, "/.") || clean == "/" || clean == "." || s.name == ".."
	if contents || strings.HasSuffix(src, "/") {
		fd, err := from.open(clean, unix.O_PATH|unix.O_DIRECTORY)
		if err != nil {
			return fail(err)
		}
		s.at, s.isDir = beneath.Lend(fd, ".", func() { unix.Close(fd) }), true
		if contents {
			s.name = "."
		}
		return s, nil
	}
	fd, err := from.open(path.Dir(clean), unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return fail(err)
	}
	s.at = beneath.Lend(fd, s.name, func() { unix.Close(fd) })
	var st unix.Stat_t
	if err := s.at.Lstat(&st); err != nil {
		s.at.Close()
		return fail(errors.Unwrap(err))
	}
	s.isDir = st.Mode&unix.S_IFMT == unix.S_IFDIR
	return s, nil
}

// destination resolves dst in to for a copy of s, as docker cp does: an
// existing directory receives s under its own name (or s's contents, for
// "dir/."); anything else is replaced by s, or made as dst, in its parent
// directory, which must exist. It returns the directory's descriptor and
// the name s takes in it.
func destination(to Place, dst string, s source) (int, string, error) {
	clean := path.Clean(dst)
	fail := func(err error) (int, string, error) {
		return -1, "", fmt.Errorf("%s: %w", to.show(dst), err)
	}
	fd, err := to.open(clean, unix.O_PATH)
	switch {
	case errors.Is(err, unix.ENOENT) && strings.HasSuffix(dst, "/"):
		return fail(errors.New("no such directory"))
	case errors.Is(err, unix.ENOENT):
	case err != nil:
		return fail(err)
	default:
		var st unix.Stat_t
		err := unix.Fstat(fd, &st)
		if err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
			return fd, s.name, nil
		}
		unix.Close(fd)
		switch {
		case err != nil:
			return fail(err)
		case s.isDir:
			return fail(errors.New("cannot copy a directory onto a file"))
		case strings.HasSuffix(dst, "/"):
			return fail(unix.ENOTDIR)
		}
	}
	if fd, err = to.open(path.Dir(clean), unix.O_PATH|unix.O_DIRECTORY); err != nil {
		return fail(err)
	}
	return fd, path.Base(clean), nil
}

// Copy copies src in from to dst in to, as `docker cp` (and cp -a) does:
// a file, or a directory and everything below it, with owners, modes,
// times, extended attributes, symbolic links and hardlinks kept. A device
// node is not made on the host (ErrDevice).
func Copy(from Place, src string, to Place, dst string) error {
	s, err := openSource(from, src)
	if err != nil {
		return err
	}
	defer s.at.Close()
	dir, name, err := destination(to, dst, s)
	if err != nil {
		return err
	}
	defer unix.Close(dir)
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := Write(pw, s.at, name)
		pw.CloseWithError(err)
		done <- err
	}()
	eerr := Extract(pr, dir, to.root >= 0)
	pr.CloseWithError(eerr)
	werr := <-done
	switch {
	case werr != nil && (eerr == nil || !errors.Is(werr, eerr)): // the source failed first
		return fmt.Errorf("copy from %s: %w", from.show(src), werr)
	case eerr != nil:
		return fmt.Errorf("copy to %s: %w", to.show(dst), eerr)
	}
	return nil
}

// WriteStream writes src in from to w as a tar stream (docker cp SRC -),
// its first entry named as src's last component.
func WriteStream(w io.Writer, from Place, src string) error {
	s, err := openSource(from, src)
	if err != nil {
		return err
	}
	defer s.at.Close()
	if err := Write(w, s.at, s.name); err != nil {
		return fmt.Errorf("copy from %s: %w", from.show(src), err)
	}
	return nil
}

// ExtractStream extracts the tar stream r into the directory dst in to
// (docker cp - DST).
func ExtractStream(r io.Reader, to Place, dst string) error {
	fd, err := to.open(path.Clean(dst), unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return fmt.Errorf("%s: %w", to.show(dst), err)
	}
	defer unix.Close(fd)
	if err := Extract(r, fd, to.root >= 0); err != nil {
		return fmt.Errorf("copy to %s: %w", to.show(dst), err)
	}
	return nil
}
