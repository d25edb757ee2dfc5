// Package beneath works on a tree that somebody else controls — a
// container's upper directory, a lower directory given to acetate-fuse —
// from the host, as root, without ever being redirected out of it.
//
// The attack it stops: a process in the container renames a symbolic link
// to a host path (or a directory swapped for such a link) over a name
// between the moment a host tool checked that name and the moment it opens
// it. A tool that works on absolute paths then opens, reads, writes,
// chmods or removes the host file as root. Here every path is resolved
// from a directory descriptor with openat2(2) RESOLVE_BENEATH |
// RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS, and every operation on the
// last component is an *at system call on its parent's descriptor that
// does not follow a symbolic link there either. Whatever the container
// swaps in, the worst it gets is an error (ELOOP, ENOTDIR, ENOENT) for its
// own request.
//
// Paths are relative to the directory the caller holds ("" or "." is the
// directory itself) and never contain "..". Because nothing is resolved
// from "/", a relative path may be up to PATH_MAX bytes long whatever the
// length of the directory's own path.
//
// Paths the container names itself (a mount target, a path to copy in or
// out) are resolved by OpenInRoot, ResolveInRoot and MkdirAllInRoot
// instead, as the container resolves them: symbolic links followed, but
// with the directory held as "/" (RESOLVE_IN_ROOT), so that none leads out.
//
// Kernel requirements: openat2 (Linux 5.6+). Extended attributes use
// getxattrat and its siblings (Linux 6.13+) and chmod uses fchmodat2
// (Linux 6.6+); on older kernels both go through the parent's descriptor in
// /proc/self/fd, which the container cannot change either.
package beneath

import (
	"errors"
	"os"
	"path"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// resolve is how every path is resolved: inside the directory, with no
// symbolic link followed on the way, the last component included.
const resolve = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS

// openat2 opens rel beneath the directory dirfd with flags (O_CLOEXEC and
// O_NOFOLLOW are added) and returns the descriptor. A symbolic link as the
// last component fails with ELOOP, unless flags hold O_PATH, which opens
// the link itself. Only for O_PATH and O_DIRECTORY opens: see At.Open.
func openat2(dirfd int, rel string, flags int, mode uint32) (int, error) {
	if rel == "" {
		rel = "."
	}
	how := unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC | unix.O_NOFOLLOW), Resolve: resolve}
	if flags&(unix.O_CREAT|unix.O_TMPFILE) != 0 {
		how.Mode = uint64(mode)
	}
	for {
		fd, err := unix.Openat2(dirfd, rel, &how)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return -1, &os.PathError{Op: "openat2", Path: rel, Err: err}
		}
		return fd, nil
	}
}

// Open opens rel beneath dirfd as Openat does, but never a device node,
// FIFO or socket: see OpenRegular.
func Open(dirfd int, rel string, flags int, mode uint32) (*os.File, error) {
	a, err := Resolve(dirfd, rel)
	if err != nil {
		return nil, err
	}
	defer a.Close()
	return a.Open(flags, mode)
}

// OpenDir opens the directory rel beneath dirfd as an O_PATH descriptor,
// to resolve further paths from or to name in *at calls.
func OpenDir(dirfd int, rel string) (int, error) {
	return openat2(dirfd, rel, unix.O_PATH|unix.O_DIRECTORY, 0)
}

// At is one name in an open directory: the pair every *at system call
// takes. Its methods never follow a symbolic link at Name.
type At struct {
	// Dir is the directory's descriptor.
	Dir int
	// Name is one path component, or "." for the directory itself.
	Name string
	// owned is set when Close must close Dir.
	owned bool
	// release, if set, is called by Close: Dir is lent (see Lend).
	release func()
}

// Lend returns name in the directory dirfd, a descriptor the caller keeps
// open until release, which Close calls.
func Lend(dirfd int, name string, release func()) At {
	return At{Dir: dirfd, Name: name, release: release}
}

// Resolve opens the parent directory of rel beneath dirfd and returns the
// parent and rel's last component. The caller closes it. rel "" is the
// directory dirfd itself (Name "."), which needs no descriptor of its own.
func Resolve(dirfd int, rel string) (At, error) {
	rel = strings.TrimSuffix(rel, "/")
	if rel == "" || rel == "." {
		return At{Dir: dirfd, Name: "."}, nil
	}
	parent, name := path.Split(rel)
	if parent == "" {
		return At{Dir: dirfd, Name: name}, nil
	}
	fd, err := OpenDir(dirfd, parent)
	if err != nil {
		return At{}, err
	}
	return At{Dir: fd, Name: name, owned: true}, nil
}

// Child is the entry name in the same directory as a, sharing a's
// descriptor: close only one of them.
func (a At) Child(name string) At { return At{Dir: a.Dir, Name: name} }

// Close closes the parent's descriptor if Resolve opened it, or gives a
// lent one back.
func (a At) Close() {
	if a.owned {
		unix.Close(a.Dir)
	}
	if a.release != nil {
		a.release()
	}
}

func (a At) pathErr(op string, err error) error {
	if err == nil {
		return nil
	}
	return &os.PathError{Op: op, Path: a.Name, Err: err}
}

// Lstat stats the entry itself.
func (a At) Lstat(st *unix.Stat_t) error {
	return a.pathErr("fstatat", unix.Fstatat(a.Dir, a.Name, st, unix.AT_SYMLINK_NOFOLLOW))
}

// Open opens the entry with flags (O_CLOEXEC and O_NOFOLLOW added): a
// symbolic link fails with ELOOP, and anything but a regular file or a
// directory with ENXIO, without being opened.
//
// The attack this stops: a container renames a device node its template
// shipped (copied up into its upper directory) over a file name just as
// the host opens that name. Opening /dev/watchdog's node arms the host's
// watchdog, a tape's rewinds it, a block device's gives the disk: the open
// itself acts, before any check of what was opened. So unless the call
// creates the file (O_CREAT|O_EXCL) or asks for a directory (O_DIRECTORY,
// which the kernel checks before opening), the entry is opened O_PATH
// first, which opens nothing, its type checked, and then reopened through
// that descriptor's /proc link, which names the same inode whatever
// happens to the name meanwhile.
func (a At) Open(flags int, mode uint32) (*os.File, error) {
	flags |= unix.O_CLOEXEC | unix.O_NOFOLLOW
	if flags&(unix.O_CREAT|unix.O_EXCL) == unix.O_CREAT|unix.O_EXCL || flags&(unix.O_DIRECTORY|unix.O_PATH) != 0 {
		fd, err := unix.Openat(a.Dir, a.Name, flags, mode)
		if err != nil {
			return nil, a.pathErr("openat", err)
		}
		return os.NewFile(uintptr(fd), a.Name), nil
	}
	for range 3 { // O_CREAT: open it, or make it if it is not there
		f, err := a.openRegular(flags)
		if flags&unix.O_CREAT == 0 || !errors.Is(err, unix.ENOENT) {
			return f, a.pathErr("openat", err)
		}
		fd, err := unix.Openat(a.Dir, a.Name, flags|unix.O_EXCL, mode)
		if !errors.Is(err, unix.EEXIST) {
			if err != nil {
				return nil, a.pathErr("openat", err)
			}
			return os.NewFile(uintptr(fd), a.Name), nil
		}
	}
	return nil, a.pathErr("openat", unix.EAGAIN)
}

// openRegular opens the existing regular file or directory a as described
// at Open.
func (a At) openRegular(flags int) (*os.File, error) {
	pfd, err := unix.Openat(a.Dir, a.Name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(pfd)
	var st unix.Stat_t
	if err := unix.Fstat(pfd, &st); err != nil {
		return nil, err
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG, unix.S_IFDIR:
	case unix.S_IFLNK:
		return nil, unix.ELOOP
	default:
		return nil, unix.ENXIO
	}
	fd, err := unix.Open(procFd(pfd), flags&^(unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW), 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), a.Name), nil
}

// Readlink returns the target of the symbolic link.
func (a At) Readlink() (string, error) {
	for size := 256; ; size *= 4 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(a.Dir, a.Name, buf)
		if err != nil {
			return "", a.pathErr("readlinkat", err)
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

// Chown changes the owner of the entry itself (-1 keeps one).
func (a At) Chown(uid, gid int) error {
	return a.pathErr("fchownat", unix.Fchownat(a.Dir, a.Name, uid, gid, unix.AT_SYMLINK_NOFOLLOW))
}

// Chmod changes the mode of the entry; a symbolic link has none to change
// (EOPNOTSUPP), and its target is never touched.
func (a At) Chmod(mode uint32) error {
	err := unix.Fchmodat(a.Dir, a.Name, mode, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.EOPNOTSUPP) && !haveFchmodat2() {
		err = a.chmodByProc(mode)
	}
	return a.pathErr("fchmodat2", err)
}

// chmodByProc is Chmod without fchmodat2 (before Linux 6.6): the entry is
// opened O_PATH without following it, and changed through its own
// descriptor's /proc link, which names that inode whatever happens to the
// name.
func (a At) chmodByProc(mode uint32) error {
	fd, err := unix.Openat(a.Dir, a.Name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return unix.EOPNOTSUPP
	}
	return unix.Chmod(procFd(fd), mode)
}

// Utimes sets the entry's access and modification times (UTIME_OMIT
// keeps one).
func (a At) Utimes(ts []unix.Timespec) error {
	return a.pathErr("utimensat", unix.UtimesNanoAt(a.Dir, a.Name, ts, unix.AT_SYMLINK_NOFOLLOW))
}

// Truncate sets the size of the regular file.
func (a At) Truncate(size int64) error {
	f, err := a.Open(unix.O_WRONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Truncate(size)
}

// Mkdir makes the directory.
func (a At) Mkdir(mode uint32) error {
	return a.pathErr("mkdirat", unix.Mkdirat(a.Dir, a.Name, mode))
}

// Mknod makes the node.
func (a At) Mknod(mode uint32, dev int) error {
	return a.pathErr("mknodat", unix.Mknodat(a.Dir, a.Name, mode, dev))
}

// Symlink makes the entry a symbolic link to target.
func (a At) Symlink(target string) error {
	return a.pathErr("symlinkat", unix.Symlinkat(target, a.Dir, a.Name))
}

// Link makes the entry a new name of old (which is not followed either).
func (a At) Link(old At) error {
	return a.pathErr("linkat", unix.Linkat(old.Dir, old.Name, a.Dir, a.Name, 0))
}

// Rename renames old to the entry with renameat2 flags.
func (a At) Rename(old At, flags uint) error {
	return a.pathErr("renameat2", unix.Renameat2(old.Dir, old.Name, a.Dir, a.Name, flags))
}

// Remove removes the entry, a file or an empty directory.
func (a At) Remove() error {
	err := unix.Unlinkat(a.Dir, a.Name, 0)
	if errors.Is(err, unix.EISDIR) {
		err = unix.Unlinkat(a.Dir, a.Name, unix.AT_REMOVEDIR)
	}
	return a.pathErr("unlinkat", err)
}

// RemoveAll removes the entry and, for a directory, everything in it,
// descending through descriptors only; a missing entry is no error.
func (a At) RemoveAll() error {
	err := unix.Unlinkat(a.Dir, a.Name, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EISDIR) {
		return a.pathErr("unlinkat", err)
	}
	if err := a.emptyDir(); err != nil {
		return err
	}
	err = unix.Unlinkat(a.Dir, a.Name, unix.AT_REMOVEDIR)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	return a.pathErr("unlinkat", err)
}

// emptyDir removes everything in the directory.
func (a At) emptyDir() error {
	d, err := a.Open(unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	defer d.Close()
	for {
		names, err := d.Readdirnames(256)
		for _, name := range names {
			if err := (At{Dir: int(d.Fd()), Name: name}).RemoveAll(); err != nil {
				return err
			}
		}
		if err != nil { // io.EOF once read
			return nil
		}
		if _, err := d.Seek(0, 0); err != nil {
			return a.pathErr("seek", err)
		}
	}
}

// procFd names descriptor fd of this process in /proc.
func procFd(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }
