package archive

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/acetate/acetate/internal/beneath"
	"golang.org/x/sys/unix"
)

// ErrEscape is wrapped by the error about a stream entry that would be
// made outside the directory extracted into: a name with "..", or a path
// through a symbolic link.
var ErrEscape = errors.New("leaves the destination directory")

// Extract makes the entries of the tar stream r in the directory dir, as
// `tar -x --same-owner --xattrs` would: owners, modes, nanosecond mtimes,
// extended attributes, links and nodes as the stream gives them. An
// existing file or link is replaced; an existing directory is kept, and
// takes the entry's metadata. A directory never replaces a file, nor a
// file a directory: that is an error, as in `docker cp`.
//
// The attack this stops: a stream (from a container, or handed to acetate
// cp on standard input) naming "../../etc/cron.d/x", or first a symbolic
// link "d" to /etc and then "d/shadow". Each entry's parent is resolved
// beneath dir one component at a time without following a symbolic link,
// and every call on the entry itself is an *at call that does not follow
// one, so such an entry fails with an error wrapping ErrEscape (or the
// system's ELOOP, if the container swaps a link in meanwhile) and nothing
// is made outside dir.
//
// With nodes false, a device node in the stream is an error (ErrDevice)
// and nothing is made for it.
func Extract(r io.Reader, dir int, nodes bool) error {
	tr := tar.NewReader(r)
	d := &dest{dir: dir}
	defer d.close()
	var dirs []*tar.Header // their times are set last, deepest first
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read tar stream: %w", err)
		}
		name, err := entryName(hdr.Name)
		if err != nil {
			return err
		}
		if name == "." && hdr.Typeflag != tar.TypeDir || hdr.Typeflag == tar.TypeXGlobalHeader {
			continue // "." is the directory extracted into: only its metadata
		}
		hdr.Name = name
		if !nodes && (hdr.Typeflag == tar.TypeChar || hdr.Typeflag == tar.TypeBlock) {
			return fmt.Errorf("extract %s: %w", show(name), ErrDevice)
		}
		if err := d.extract(tr, hdr); err != nil {
			return fmt.Errorf("extract %s: %w", show(name), err)
		}
		if hdr.Typeflag == tar.TypeDir {
			dirs = append(dirs, hdr)
		}
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := at(dir, dirs[i].Name, func(a beneath.At) error { return a.Utimes(times(dirs[i])) }); err != nil {
			return fmt.Errorf("extract %s: %w", show(dirs[i].Name), err)
		}
	}
	return nil
}

// ErrDevice is wrapped by the error about a device node in a stream
// extracted on the host. The attack it stops: a container ships a node of
// the host's disk (b 8:0) with mode 0666, and a copy out of the container
// makes it in a host directory, where it is no longer on a nodev mount
// and opens the disk to whoever reads it.
var ErrDevice = errors.New("device node from a container is not made on the host (copy it as a tar stream with - instead)")

// entryName cleans the name of a stream entry to a relative path, or
// refuses it.
func entryName(name string) (string, error) {
	for _, comp := range strings.Split(name, "/") {
		if comp == ".." {
			return "", fmt.Errorf("tar entry %s: %w", show(name), ErrEscape)
		}
	}
	if rel := strings.TrimPrefix(path.Clean("/"+name), "/"); rel != "" {
		return rel, nil
	}
	return ".", nil
}

// at resolves the entry name beneath dir and calls do with it.
func at(dir int, name string, do func(beneath.At) error) error {
	a, err := beneath.ResolveDeep(dir, name)
	if (errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR)) && throughLink(dir, name) {
		return fmt.Errorf("%w through a symbolic link: %w", ErrEscape, err)
	}
	if err != nil {
		return err
	}
	defer a.Close()
	return do(a)
}

// throughLink reports whether a directory on the way to name, beneath
// dir, is a symbolic link: what made its resolution fail.
func throughLink(dir int, name string) bool {
	comps := strings.Split(name, "/")
	for i := 1; i < len(comps); i++ {
		a, err := beneath.ResolveDeep(dir, strings.Join(comps[:i], "/"))
		if err != nil {
			return errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR)
		}
		var st unix.Stat_t
		err = a.Lstat(&st)
		a.Close()
		if err == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
			return true
		}
	}
	return false
}

// dest is the directory a stream is extracted into, with the descriptor
// of the directory the last entry was made in: a stream lists what a
// directory holds together, so most entries are made with no lookup.
type dest struct {
	dir int
	// parent is the path of the directory held as fd, "" for none.
	parent string
	fd     int
}

// at resolves the entry name beneath d's directory, as the function at
// does, and calls do with it.
func (d *dest) at(name string, do func(beneath.At) error) error {
	parent, base := path.Split(name)
	if parent == "" {
		return do(beneath.Lend(d.dir, name, nil))
	}
	if parent = strings.TrimSuffix(parent, "/"); parent != d.parent {
		a, err := beneath.ResolveDeep(d.dir, parent)
		fd := -1
		if err == nil {
			fd, err = beneath.OpenDir(a.Dir, a.Name)
			a.Close()
		}
		if (errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR)) && throughLink(d.dir, name) {
			return fmt.Errorf("%w through a symbolic link: %w", ErrEscape, err)
		}
		if err != nil {
			return err
		}
		d.close()
		d.parent, d.fd = parent, fd
	}
	return do(beneath.Lend(d.fd, base, nil))
}

func (d *dest) close() {
	if d.parent != "" {
		unix.Close(d.fd)
		d.parent = ""
	}
}

// extract makes the entry hdr, reading a regular file's content from tr.
func (d *dest) extract(tr io.Reader, hdr *tar.Header) error {
	dir := d.dir
	return d.at(hdr.Name, func(a beneath.At) error {
		if err := clear(a, hdr.Typeflag == tar.TypeDir); err != nil {
			return err
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := a.Mkdir(0o700); err != nil && !errors.Is(err, unix.EEXIST) {
				return err
			}
		case tar.TypeReg:
			if err := create(a, tr); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := a.Symlink(hdr.Linkname); err != nil {
				return err
			}
		case tar.TypeLink:
			// The link's target is an entry of the stream, resolved as
			// entries are: never a file outside dir.
			target, err := entryName(hdr.Linkname)
			if err != nil {
				return err
			}
			return at(dir, target, func(old beneath.At) error { return a.Link(old) })
		case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
			mode := map[byte]uint32{tar.TypeChar: unix.S_IFCHR, tar.TypeBlock: unix.S_IFBLK, tar.TypeFifo: unix.S_IFIFO}[hdr.Typeflag]
			if err := a.Mknod(mode|0o600, int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)))); err != nil {
				return err
			}
		default:
			return fmt.Errorf("tar entry type %q is not supported", hdr.Typeflag)
		}
		return metadata(a, hdr)
	})
}

// clear removes what stands at a unless it is a directory and dir is set,
// so the entry can be made there.
func clear(a beneath.At, dir bool) error {
	var st unix.Stat_t
	err := a.Lstat(&st)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
	switch {
	case isDir && dir:
		return nil
	case isDir:
		return errors.New("cannot overwrite a directory with a non-directory")
	case dir:
		return errors.New("cannot overwrite a non-directory with a directory")
	}
	return a.Remove()
}

// create makes the regular file a with the content read from r.
func create(a beneath.At, r io.Reader) error {
	f, err := a.Open(unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// metadata gives the new entry a its owner, mode, extended attributes and
// times, in that order: a chown clears set-id bits and
// security.capability.
func metadata(a beneath.At, hdr *tar.Header) error {
	if err := a.Chown(hdr.Uid, hdr.Gid); err != nil {
		return err
	}
	if hdr.Typeflag != tar.TypeSymlink {
		if err := a.Chmod(uint32(hdr.Mode) & 0o7777); err != nil {
			return err
		}
	}
	for k, v := range hdr.PAXRecords {
		x, ok := strings.CutPrefix(k, "SCHILY.xattr.")
		if !ok || privateXattr(x) {
			continue
		}
		if err := a.Setxattr(x, []byte(v), 0); err != nil {
			return err
		}
	}
	if hdr.Typeflag == tar.TypeDir {
		return nil // after what it holds: see Extract
	}
	return a.Utimes(times(hdr))
}

// times are hdr's access and modification times for utimensat.
func times(hdr *tar.Header) []unix.Timespec {
	atime := unix.Timespec{Nsec: unix.UTIME_OMIT}
	if !hdr.AccessTime.IsZero() {
		atime = unix.NsecToTimespec(hdr.AccessTime.UnixNano())
	}
	return []unix.Timespec{atime, unix.NsecToTimespec(hdr.ModTime.UnixNano())}
}
