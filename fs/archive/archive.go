// Package archive moves trees in and out of a container's root as tar
// streams, the way `acetate cp` (and `docker cp`) does: Write turns an
// entry and everything below it into a tar stream, Extract makes the
// entries of a stream in a directory. A copy from one place to another is
// Write piped into Extract.
//
// The stream keeps everything a template keeps: type, mode (set-id and
// sticky bits too), numeric owner, nanosecond mtime (PAX records),
// extended attributes (SCHILY.xattr records, security.capability
// included), symbolic link targets, hardlinks (as tar links to the first
// name of the inode), device numbers and FIFOs. Sockets have no tar form
// and are left out. overlayfs's own attributes (trusted.overlay.*) never
// cross: see [privateXattr].
//
// Both sides work on trees somebody else controls, through descriptors
// only (package internal/beneath). Write descends from a directory
// descriptor one entry at a time with *at calls that follow no symbolic
// link, and opens no device node; Extract resolves each entry's parent
// beneath the directory it was given, without following a symbolic link
// (a stream that would write through a link, or a name with "..", is
// refused with an error naming the entry). So a container that swaps a
// directory for a link to a host path while a copy runs gets an error for
// the copy, never a host file read or written.
package archive

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/acetate/acetate/internal/beneath"
	"golang.org/x/sys/unix"
)

// privateXattr reports whether attr is one of overlayfs's own attributes
// (trusted.overlay.*, or user.overlay.* for an unprivileged mount). The
// attack it stops: a stream carrying trusted.overlay.redirect or
// .metacopy that, set on a file of a container's upper directory, would
// make the union show another file's content there. They are neither
// written into a stream nor set from one.
func privateXattr(attr string) bool {
	return strings.HasPrefix(attr, "trusted.overlay.") || strings.HasPrefix(attr, "user.overlay.")
}

// Write writes the entry src, and for a directory everything below it, to
// w as a tar stream whose first entry is named name. With name "." the
// directory is the entry "./" (its metadata, which Extract gives the
// directory it extracts into, as cp -a src/. dst does) and what it holds
// is named by itself. Each
// entry is read through descriptors opened without following a symbolic
// link: an entry that is swapped for something else while it is read
// fails the write with an error naming it.
func Write(w io.Writer, src beneath.At, name string) error {
	tw := tar.NewWriter(w)
	wr := &writer{tw: tw, links: map[[2]uint64]string{}}
	if err := wr.entry(src, strings.TrimSuffix(name, "/")); err != nil {
		return err
	}
	return tw.Close()
}

// writer is one Write.
type writer struct {
	tw *tar.Writer
	// links maps a regular file's inode with several names to the first
	// name written, which its later names link to.
	links map[[2]uint64]string
}

func (wr *writer) entry(at beneath.At, name string) error {
	var st unix.Stat_t
	if err := at.Lstat(&st); err != nil {
		return fmt.Errorf("%s: %w", show(name), err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return wr.dir(at, name)
	case unix.S_IFREG:
		return wr.file(at, name)
	}
	hdr := header(name, &st)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFLNK:
		target, err := at.Readlink()
		if err != nil {
			return fmt.Errorf("%s: %w", show(name), err)
		}
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, target
	case unix.S_IFCHR, unix.S_IFBLK:
		hdr.Typeflag = tar.TypeChar
		if st.Mode&unix.S_IFMT == unix.S_IFBLK {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	default: // a socket: tar has no such entry
		return nil
	}
	if err := xattrs(at, hdr); err != nil {
		return fmt.Errorf("%s: %w", show(name), err)
	}
	return wr.tw.WriteHeader(hdr)
}

// dir writes the directory at and what it holds. The directory is opened
// (O_DIRECTORY|O_NOFOLLOW: a link swapped in fails) and its entries are
// reached through that descriptor, wherever the container moves it.
func (wr *writer) dir(at beneath.At, name string) error {
	d, err := at.Open(unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return fmt.Errorf("%s: %w", show(name), err)
	}
	defer d.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(d.Fd()), &st); err != nil {
		return fmt.Errorf("%s: %w", show(name), err)
	}
	hdr := header(name+"/", &st)
	hdr.Typeflag = tar.TypeDir
	if err := xattrs(at, hdr); err != nil {
		return fmt.Errorf("%s: %w", show(name), err)
	}
	if err := wr.tw.WriteHeader(hdr); err != nil {
		return err
	}
	names, err := d.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("%s: %w", show(name), err)
	}
	slices.Sort(names)
	for _, child := range names {
		if err := wr.entry(beneath.Lend(int(d.Fd()), child, nil), join(name, child)); err != nil {
			return err
		}
	}
	return nil
}

// file writes the regular file at: its header comes from the descriptor
// opened (Open refuses a link or a device swapped in), so that the size
// written is the size of what is read; a file that shrinks meanwhile fails
// the write.
func (wr *writer) file(at beneath.At, name string) error {
	f, err := at.Open(unix.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("%s: %w", show(name), err)
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return fmt.Errorf("%s: %w", show(name), err)
	}
	hdr := header(name, &st)
	ino := [2]uint64{st.Dev, st.Ino}
	if first, ok := wr.links[ino]; ok && st.Nlink > 1 {
		hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
		return wr.tw.WriteHeader(hdr)
	}
	if st.Nlink > 1 {
		wr.links[ino] = name
	}
	hdr.Typeflag, hdr.Size = tar.TypeReg, st.Size
	if err := xattrs(at, hdr); err != nil {
		return fmt.Errorf("%s: %w", show(name), err)
	}
	if err := wr.tw.WriteHeader(hdr); err != nil {
		return err
	}
	if _, err := io.CopyN(wr.tw, f, st.Size); err != nil {
		return fmt.Errorf("%s: %w", show(name), err)
	}
	return nil
}

// header is the tar header of an entry with status st: numeric owner
// only (names would be looked up on the host, not in the container).
func header(name string, st *unix.Stat_t) *tar.Header {
	return &tar.Header{
		Name: name, Mode: int64(st.Mode & 0o7777), Uid: int(st.Uid), Gid: int(st.Gid),
		ModTime: time.Unix(st.Mtim.Unix()), Format: tar.FormatPAX,
	}
}

// xattrs adds the extended attributes of at to hdr.
func xattrs(at beneath.At, hdr *tar.Header) error {
	names, err := at.Listxattr()
	if errors.Is(err, unix.EOPNOTSUPP) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, x := range names {
		if privateXattr(x) {
			continue
		}
		v, ok := at.Xattr(x)
		if !ok {
			continue // removed meanwhile
		}
		if hdr.PAXRecords == nil {
			hdr.PAXRecords = map[string]string{}
		}
		hdr.PAXRecords["SCHILY.xattr."+x] = v
	}
	return nil
}

func join(dir, name string) string {
	if dir == "." || dir == "" {
		return name
	}
	return dir + "/" + name
}

// show quotes an entry's name for an error, whatever bytes it holds.
func show(name string) string { return fmt.Sprintf("%q", name) }
