package upper

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"

	"github.com/acetate/acetate/internal/beneath"
	"github.com/acetate/acetate/layers"
	"golang.org/x/sys/unix"
)

// Copy copies the upper directory src to the new directory dst with every
// entry, whiteout, opaque and redirect mark, xattr (trusted.* included),
// owner, mode, times, hardlink and hole. src is read as Read reads it, from
// descriptors only (see walk): a name the container swaps for a link to
// the host copies the link, or fails, and never copies the host's file or
// directory. A device node is made again, never opened. Any depth copies.
func Copy(src, dst string) error {
	from, err := openDir(src)
	if err != nil {
		return err
	}
	defer from.Close()
	if err := os.Mkdir(dst, 0o700); err != nil {
		return fmt.Errorf("copy upper dir: %w", err)
	}
	to, err := openDir(dst)
	if err != nil {
		return err
	}
	defer to.Close()
	c := &copier{root: to, links: map[[2]uint64]string{}}
	var st unix.Stat_t
	if err := unix.Fstat(int(from.Fd()), &st); err != nil {
		return fmt.Errorf("copy upper dir: %w", err)
	}
	if err := c.dir(from, to, "/"); err != nil {
		return fmt.Errorf("copy upper dir: %w", err)
	}
	err = c.meta(beneath.At{Dir: int(from.Fd()), Name: "."}, beneath.At{Dir: int(to.Fd()), Name: "."}, &st)
	if err != nil {
		return fmt.Errorf("copy upper dir: %w", err)
	}
	return nil
}

// copier copies one upper directory.
type copier struct {
	root *os.File
	// links maps the dev, ino of a hardlinked source file to the path of
	// its first copy.
	links map[[2]uint64]string
}

// dir copies the entries of directory from, named rel, into to.
func (c *copier) dir(from, to *os.File, rel string) error {
	names, err := from.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("%q: %w", rel, err)
	}
	for _, name := range names {
		src := beneath.At{Dir: int(from.Fd()), Name: name}
		if err := c.entry(src, beneath.At{Dir: int(to.Fd()), Name: name}, path.Join(rel, name)); err != nil {
			return err
		}
	}
	return nil
}

// entry copies the entry src, named rel, to dst, and then its metadata.
func (c *copier) entry(src, dst beneath.At, rel string) error {
	var st unix.Stat_t
	if err := src.Lstat(&st); err != nil {
		return fmt.Errorf("%q: %w", rel, err)
	}
	key := [2]uint64{st.Dev, st.Ino}
	if st.Mode&unix.S_IFMT == unix.S_IFREG && st.Nlink > 1 {
		if first, ok := c.links[key]; ok {
			return c.link(first, dst)
		}
		c.links[key] = rel
	}
	var err error
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if err := c.subdir(src, dst, rel, &st); err != nil {
			return err
		}
	case unix.S_IFREG:
		if err := copyFile(src, dst, rel, &st); err != nil {
			return err
		}
	case unix.S_IFLNK:
		var target string
		if target, err = src.Readlink(); err == nil {
			err = dst.Symlink(target)
		}
	default: // whiteouts and other nodes, fifos, sockets
		err = dst.Mknod(st.Mode, int(st.Rdev))
	}
	if err == nil {
		err = c.meta(src, dst, &st)
	}
	if err != nil {
		return fmt.Errorf("%q: %w", rel, err)
	}
	return nil
}

// subdir makes dst and copies the directory src into it.
func (c *copier) subdir(src, dst beneath.At, rel string, st *unix.Stat_t) error {
	from, err := openSame(src, rel, st, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return err
	}
	defer from.Close()
	if err := dst.Mkdir(0o700); err != nil {
		return fmt.Errorf("%q: %w", rel, err)
	}
	to, err := dst.Open(unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return fmt.Errorf("%q: %w", rel, err)
	}
	defer to.Close()
	return c.dir(from, to, rel)
}

// link makes dst another name of the copy at first.
func (c *copier) link(first string, dst beneath.At) error {
	old, err := beneath.ResolveDeep(int(c.root.Fd()), first)
	if err != nil {
		return err
	}
	defer old.Close()
	return dst.Link(old)
}

// meta gives dst the metadata of src: st and src's xattrs.
func (c *copier) meta(src, dst beneath.At, st *unix.Stat_t) error {
	xs, err := layers.XattrsBeneath(src)
	if err != nil {
		return err
	}
	m := meta{uid: st.Uid, gid: st.Gid, mode: st.Mode & 0o7777, symlink: st.Mode&unix.S_IFMT == unix.S_IFLNK,
		xattrs: xs, times: []unix.Timespec{st.Atim, st.Mtim}}
	return m.apply(dst)
}

// copyFile copies the content of the regular file src, which st
// describes, to the new file dst.
func copyFile(src, dst beneath.At, rel string, st *unix.Stat_t) error {
	in, now, err := openFile(src, rel, unix.O_RDONLY)
	if err != nil {
		return err
	}
	defer in.Close()
	if !sameInode(&now, st) {
		return replaced(rel)
	}
	out, err := dst.Open(unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL, 0o600)
	if err == nil {
		err = copyData(out, in, now.Size)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return fmt.Errorf("%q: %w", rel, err)
	}
	return nil
}

// copyData copies the first size bytes of in to out, leaving holes where
// in has them (SEEK_DATA, SEEK_HOLE): a sparse file costs its data, not
// its size.
func copyData(out, in *os.File, size int64) error {
	infd := int(in.Fd())
	for off := int64(0); off < size; {
		data, err := unix.Seek(infd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // nothing but a hole up to the end
		}
		if err != nil {
			return err
		}
		hole, err := unix.Seek(infd, data, unix.SEEK_HOLE)
		if err != nil {
			return err
		}
		hole = min(hole, size)
		if err := copyRange(out, in, data, hole-data); err != nil {
			return err
		}
		off = hole
	}
	return out.Truncate(size)
}

// copyRange copies n bytes at offset off of in to the same offset of out;
// between filesystems (a container's disk image and the store's), where
// copy_file_range answers EXDEV, through a buffer.
func copyRange(out, in *os.File, off, n int64) error {
	roff, woff := off, off
	for n > 0 {
		done, err := unix.CopyFileRange(int(in.Fd()), &roff, int(out.Fd()), &woff, int(min(n, 1<<30)), 0)
		if errors.Is(err, unix.EXDEV) {
			_, err = io.Copy(io.NewOffsetWriter(out, woff), io.NewSectionReader(in, roff, n))
			return err
		}
		if err != nil {
			return err
		}
		if done == 0 {
			return nil // the file shrank meanwhile
		}
		n -= int64(done)
	}
	return nil
}
