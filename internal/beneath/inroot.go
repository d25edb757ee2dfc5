package beneath

import (
	"errors"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// inRoot is how a path the container names is resolved: as the container
// itself would, but with the directory held as "/". An absolute symbolic
// link starts again at that directory, ".." stops there, and no magic
// link of /proc is followed.
const inRoot = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS

// OpenInRoot opens path as the container whose root is the directory
// rootfd sees it: symbolic links (the last component's too, unless flags
// hold O_NOFOLLOW) and ".." resolve inside the root and never above it.
// O_CLOEXEC is added.
//
// The attack this stops: a container makes /data a symbolic link to
// /etc/shadow, or to ../../../../etc, and asks the host to copy a file in
// or out of /data, or to mount a volume there. Resolved from the host's
// "/", the host would read, write or mount over its own file; resolved
// here, the link leads to the container's /etc/shadow. A container
// swapping names while this runs changes at most which of its own files
// is opened.
func OpenInRoot(rootfd int, p string, flags int) (int, error) {
	how := unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: inRoot}
	if p == "" {
		p = "/"
	}
	for {
		fd, err := unix.Openat2(rootfd, p, &how)
		if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
			continue // EAGAIN: a rename raced the lookup; it is safe to retry
		}
		if err != nil {
			return -1, &os.PathError{Op: "openat2", Path: p, Err: err}
		}
		return fd, nil
	}
}

// ResolveInRoot opens the parent directory of p inside the root rootfd,
// as OpenInRoot does, and returns it with p's last component, which is not
// followed: At's methods then work on the entry itself. p "/" is the root
// itself (Name "."). The caller closes the result.
func ResolveInRoot(rootfd int, p string) (At, error) {
	p = path.Clean("/" + p)
	if p == "/" {
		return At{Dir: rootfd, Name: "."}, nil
	}
	parent, name := path.Split(p)
	if name == ".." { // "/.." cleans to "/", so only a parent of the root
		return At{Dir: rootfd, Name: "."}, nil
	}
	fd, err := OpenInRoot(rootfd, parent, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return At{}, err
	}
	return At{Dir: fd, Name: name, owned: true}, nil
}

// errDanglingLink is why MkdirAllInRoot fails on a link whose target is
// missing.
var errDanglingLink = errors.New("a symbolic link whose target the root lacks (links are not followed to make directories)")

// MkdirAllInRoot opens the directory p inside the root rootfd as an O_PATH
// descriptor, making the directories it lacks with mode, one component at
// a time: each is made with mkdirat in its parent, opened as OpenInRoot
// resolves it, and nothing is ever made outside the root. A component that
// exists but is not a directory, or a symbolic link whose target is
// missing, fails with ENOTDIR or ENOENT: the link is not followed to make
// its target.
//
// Each parent keeps its access and modification times, so that the
// directories made are the only trace of the call (a launcher's mount
// points are not a container's changes); made, when not nil, is called
// with each directory made, named in its parent's descriptor.
func MkdirAllInRoot(rootfd int, p string, mode uint32, made func(At) error) (int, error) {
	p = path.Clean("/" + p)
	fd, err := OpenInRoot(rootfd, p, unix.O_PATH|unix.O_DIRECTORY)
	if !errors.Is(err, unix.ENOENT) {
		return fd, err
	}
	comps := strings.Split(strings.TrimPrefix(p, "/"), "/")
	parent, err := OpenInRoot(rootfd, "/", unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return -1, err
	}
	for i, comp := range comps {
		sub := "/" + strings.Join(comps[:i+1], "/")
		fd, err := OpenInRoot(rootfd, sub, unix.O_PATH|unix.O_DIRECTORY)
		if errors.Is(err, unix.ENOENT) {
			// The parent is held by descriptor: the directory is made in
			// the one opened, wherever the container moved it since.
			if merr := mkdirKeepTimes(parent, comp, mode, made); merr != nil {
				unix.Close(parent)
				return -1, &os.PathError{Op: "mkdirat", Path: sub, Err: merr}
			}
			fd, err = OpenInRoot(parent, comp, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW)
		}
		if err != nil {
			why := errors.Unwrap(err)
			var st unix.Stat_t
			if unix.Fstatat(parent, comp, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
				why = errDanglingLink
			}
			unix.Close(parent)
			return -1, &os.PathError{Op: "mkdir", Path: sub, Err: why}
		}
		unix.Close(parent)
		parent = fd
	}
	return parent, nil
}

// mkdirKeepTimes makes the directory name in parent, unless it exists, and
// gives parent its times back; made is called with the new directory.
func mkdirKeepTimes(parent int, name string, mode uint32, made func(At) error) error {
	var st unix.Stat_t
	if err := unix.Fstat(parent, &st); err != nil {
		return err
	}
	if err := unix.Mkdirat(parent, name, mode); errors.Is(err, unix.EEXIST) {
		return nil // made meanwhile, by somebody else
	} else if err != nil {
		return err
	}
	if made != nil {
		if err := made(At{Dir: parent, Name: name}); err != nil {
			return err
		}
	}
	return At{Dir: parent, Name: "."}.Utimes([]unix.Timespec{unix.Timespec(st.Atim), unix.Timespec(st.Mtim)})
}
