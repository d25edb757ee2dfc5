package fstest

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"slices"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Cases returns the conformance table. Paths refer to the Fixture: "lower"
// cases work on template files, "upper" cases on files the case creates,
// "both" cases on template files changed more than once.
func Cases() map[string]Case {
	m := map[string]func(f fsT){}
	for _, group := range []map[string]func(f fsT){dataCases(), metaCases(), nameCases(), dirCases(), miscCases(), securityCases(), posixCases()} {
		for k, v := range group {
			m[k] = v
		}
	}
	return cases(m)
}

// bigByte is byte i of the fixture's /big, as testtree.Crafted writes it.
func bigByte(i int) byte { return byte(i*7 + i/4096) }

func dataCases() map[string]func(f fsT) {
	return map[string]func(f fsT){
		"read/lower": func(f fsT) {
			f.wantContent("bin/ping", "ping binary")
			if b := f.read("big"); len(b) != 6<<20 || b[4097] != bigByte(4097) {
				f.Fatalf("big: %d bytes", len(b))
			}
		},
		"write/lower-append": func(f fsT) {
			f.appendTo("home/user/notes", "more\n")
			f.wantContent("home/user/notes", "notes of user\nmore\n")
			f.wantContent("home/user/same-content", "notes of user\n")
		},
		"write/lower-pwrite-middle": func(f fsT) {
			fd, err := os.OpenFile(f.p("big"), os.O_RDWR, 0)
			f.ok(err)
			_, err = fd.WriteAt([]byte("MIDDLE"), 1<<20)
			f.ok(err)
			f.ok(fd.Close())
			b := f.read("big")
			if len(b) != 6<<20 || string(b[1<<20:1<<20+6]) != "MIDDLE" || b[0] != 0 || b[2<<20] != bigByte(2<<20) {
				f.Fatal("big: wrong content after pwrite")
			}
		},
		"write/upper-new": func(f fsT) {
			f.write("tmp/new", "fresh")
			f.wantContent("tmp/new", "fresh")
			if st := f.stat("tmp/new"); st.Mode != unix.S_IFREG|0o644 || st.Size != 5 {
				f.Fatalf("new file: mode %o size %d", st.Mode, st.Size)
			}
		},
		"write/both-twice": func(f fsT) {
			f.appendTo("etc/passwd", "a:x:1:1::/:/bin/sh\n")
			f.appendTo("etc/passwd", "b:x:2:2::/:/bin/sh\n")
			f.wantContent("etc/passwd", "root:x:0:0:root:/root:/bin/sh\na:x:1:1::/:/bin/sh\nb:x:2:2::/:/bin/sh\n")
		},
		"write/open-rdwr-no-write": func(f fsT) {
			fd, err := os.OpenFile(f.p("bin/tool"), os.O_RDWR, 0)
			f.ok(err)
			f.ok(fd.Close())
			f.wantContent("bin/tool", "#!/bin/sh\necho tool\n")
		},
		"write/while-open-read-only": func(f fsT) {
			ro, err := os.Open(f.p("etc/passwd"))
			f.ok(err)
			defer ro.Close()
			b := make([]byte, 4)
			_, err = ro.ReadAt(b, 0)
			f.ok(err)
			f.appendTo("etc/passwd", "new:x:9:9::/:/bin/sh\n")
			f.wantContent("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnew:x:9:9::/:/bin/sh\n")
			// The older descriptor still reads (the old data on a union).
			if _, err := ro.ReadAt(b, 0); err != nil || string(b) != "root" {
				f.Fatalf("the descriptor opened before reads %q, %v", b, err)
			}
			again, err := os.Open(f.p("etc/passwd"))
			f.ok(err)
			defer again.Close()
			got, err := io.ReadAll(again)
			f.ok(err)
			if !bytes.HasSuffix(got, []byte("new:x:9:9::/:/bin/sh\n")) {
				f.Fatalf("a new descriptor reads %q", got)
			}
		},
		"truncate/lower-shrink": func(f fsT) {
			f.ok(os.Truncate(f.p("big"), 100))
			if st := f.stat("big"); st.Size != 100 {
				f.Fatalf("size %d", st.Size)
			}
		},
		"truncate/lower-grow-sparse": func(f fsT) {
			f.ok(os.Truncate(f.p("empty-file"), 1<<30))
			if st := f.stat("empty-file"); st.Size != 1<<30 || st.Blocks > 64 {
				f.Fatalf("size %d blocks %d", st.Size, st.Blocks)
			}
		},
		"truncate/open-trunc": func(f fsT) {
			fd, err := os.OpenFile(f.p("bin/tool"), os.O_WRONLY|os.O_TRUNC, 0)
			f.ok(err)
			f.ok(fd.Close())
			f.wantContent("bin/tool", "")
		},
		"truncate/ftruncate-upper": func(f fsT) {
			fd, err := os.Create(f.p("tmp/t"))
			f.ok(err)
			_, err = fd.WriteString("0123456789")
			f.ok(err)
			f.ok(fd.Truncate(4))
			f.ok(fd.Close())
			f.wantContent("tmp/t", "0123")
		},
		"large/write-read-64MiB": func(f fsT) {
			data := bytes.Repeat([]byte("0123456789abcdef"), 4<<20)
			f.ok(os.WriteFile(f.p("tmp/large"), data, 0o600))
			if !bytes.Equal(f.read("tmp/large"), data) {
				f.Fatal("large file content differs")
			}
		},
		"sparse/lower-holes": func(f fsT) {
			b := f.read("sparse")
			if len(b) != 8<<20 {
				f.Fatalf("sparse: %d bytes", len(b))
			}
		},
		"sparse/upper-seek-data-hole": func(f fsT) {
			fd, err := os.Create(f.p("tmp/holes"))
			f.ok(err)
			defer fd.Close()
			_, err = fd.WriteAt([]byte("data"), 16<<20)
			f.ok(err)
			f.ok(fd.Sync())
			off, err := unix.Seek(int(fd.Fd()), 0, unix.SEEK_DATA)
			f.ok(err)
			if off > 16<<20 || off < 1<<20 {
				f.Fatalf("SEEK_DATA from 0 = %d, want the data block near 16 MiB", off)
			}
			if st := f.stat("tmp/holes"); st.Blocks > 64 {
				f.Fatalf("sparse file uses %d blocks", st.Blocks)
			}
		},
		"mmap/lower-read": func(f fsT) {
			fd, err := os.Open(f.p("big"))
			f.ok(err)
			defer fd.Close()
			m, err := unix.Mmap(int(fd.Fd()), 0, 6<<20, unix.PROT_READ, unix.MAP_SHARED)
			f.ok(err)
			defer unix.Munmap(m)
			if m[4097] != bigByte(4097) {
				f.Fatal("mmap reads wrong data")
			}
		},
		"mmap/lower-write-shared": func(f fsT) {
			fd, err := os.OpenFile(f.p("bin/ping"), os.O_RDWR, 0)
			f.ok(err)
			m, err := unix.Mmap(int(fd.Fd()), 0, 11, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
			f.ok(err)
			copy(m, "PING")
			f.ok(unix.Msync(m, unix.MS_SYNC))
			f.ok(unix.Munmap(m))
			f.ok(fd.Close())
			f.wantContent("bin/ping", "PING binary")
		},
		"fsync/lower-copyup": func(f fsT) {
			fd, err := os.OpenFile(f.p("etc/passwd"), os.O_WRONLY|os.O_APPEND, 0)
			f.ok(err)
			_, err = fd.WriteString("x\n")
			f.ok(err)
			f.ok(fd.Sync())
			f.ok(unix.Fdatasync(int(fd.Fd())))
			f.ok(fd.Close())
			d, err := os.Open(f.p("etc"))
			f.ok(err)
			f.ok(d.Sync())
			f.ok(d.Close())
		},
		"unlinked/open-file-stays-readable": func(f fsT) {
			fd, err := os.OpenFile(f.p("etc/passwd"), os.O_RDWR, 0)
			f.ok(err)
			defer fd.Close()
			f.ok(os.Remove(f.p("etc/passwd")))
			var st unix.Stat_t
			f.ok(unix.Fstat(int(fd.Fd()), &st))
			if st.Nlink != 0 {
				f.Fatalf("fstat of unlinked file: nlink %d", st.Nlink)
			}
			b := make([]byte, 4)
			_, err = fd.ReadAt(b, 0)
			f.ok(err)
			if string(b) != "root" {
				f.Fatalf("read %q", b)
			}
			f.gone("etc/passwd")
		},
	}
}

func metaCases() map[string]func(f fsT) {
	return map[string]func(f fsT){
		"chmod/lower-file-keeps-xattrs": func(f fsT) {
			before := f.stat("bin/ping")
			f.ok(os.Chmod(f.p("bin/ping"), 0o750))
			st := f.stat("bin/ping")
			if st.Mode != unix.S_IFREG|0o750 || st.Ino != before.Ino || st.Mtim != before.Mtim {
				f.Fatalf("after chmod: mode %o ino %d (was %d)", st.Mode, st.Ino, before.Ino)
			}
			if _, err := f.getxattr("bin/ping", "security.capability"); err != nil {
				f.Fatalf("capability lost: %v", err)
			}
			f.wantContent("bin/ping", "ping binary")
		},
		"chmod/lower-dir": func(f fsT) {
			f.ok(os.Chmod(f.p("empty-dir"), 0o701))
			if st := f.stat("empty-dir"); st.Mode != unix.S_IFDIR|0o701 {
				f.Fatalf("mode %o", st.Mode)
			}
		},
		"chmod/setuid-bits": func(f fsT) {
			f.ok(os.Chmod(f.p("bin/tool"), 0o6755|os.ModeSetuid|os.ModeSetgid))
			if st := f.stat("bin/tool"); st.Mode&07777 != 06755 {
				f.Fatalf("mode %o", st.Mode)
			}
		},
		"chown/lower-hardlinked": func(f fsT) {
			f.ok(os.Lchown(f.p("links/a"), 42, 43))
			for _, p := range []string{"links/a", "links/b", "bin/c-link"} {
				if st := f.stat(p); st.Uid != 42 || st.Gid != 43 {
					f.Fatalf("%s: owner %d:%d", p, st.Uid, st.Gid)
				}
			}
		},
		"chown/lower-symlink": func(f fsT) {
			f.ok(os.Lchown(f.p("abs-link"), 5, 6))
			if st := f.stat("abs-link"); st.Uid != 5 || st.Gid != 6 {
				f.Fatalf("owner %d:%d", st.Uid, st.Gid)
			}
		},
		"utimes/lower-file-ns": func(f fsT) {
			ts := []unix.Timespec{{Sec: 1000, Nsec: 7}, {Sec: 2000, Nsec: 123456789}}
			f.ok(unix.UtimesNanoAt(unix.AT_FDCWD, f.p("bin/sg"), ts, 0))
			if st := f.stat("bin/sg"); st.Mtim.Sec != 2000 || st.Mtim.Nsec != 123456789 {
				f.Fatalf("mtime %v", st.Mtim)
			}
		},
		"utimes/lower-symlink": func(f fsT) {
			ts := []unix.Timespec{{Sec: 1000}, {Sec: 3000, Nsec: 5}}
			f.ok(unix.UtimesNanoAt(unix.AT_FDCWD, f.p("dangling"), ts, unix.AT_SYMLINK_NOFOLLOW))
			if st := f.stat("dangling"); st.Mtim.Sec != 3000 || st.Mtim.Nsec != 5 {
				f.Fatalf("mtime %v", st.Mtim)
			}
		},
		"xattr/lower-get-list": func(f fsT) {
			if v, err := f.getxattr("home/user/notes", "user.comment"); err != nil || v != "hello" {
				f.Fatalf("user.comment = %q, %v", v, err)
			}
			if got := f.listxattr("home/user/notes"); !slices.Equal(got, []string{"trusted.acetate-test", "user.comment"}) {
				f.Fatalf("listxattr %q", got)
			}
			_, err := f.getxattr("home/user/notes", "user.none")
			f.errno(err, unix.ENODATA)
		},
		"xattr/lower-set-remove": func(f fsT) {
			f.ok(unix.Lsetxattr(f.p("home/user/notes"), "user.new", []byte("v"), 0))
			f.ok(unix.Lremovexattr(f.p("home/user/notes"), "user.comment"))
			if got := f.listxattr("home/user/notes"); !slices.Equal(got, []string{"trusted.acetate-test", "user.new"}) {
				f.Fatalf("listxattr %q", got)
			}
			f.errno(unix.Lsetxattr(f.p("home/user/notes"), "user.new", []byte("w"), unix.XATTR_CREATE), unix.EEXIST)
		},
		"xattr/upper-file-and-dir": func(f fsT) {
			f.write("tmp/x", "x")
			f.ok(unix.Lsetxattr(f.p("tmp/x"), "user.a", []byte("1"), 0))
			f.ok(unix.Lsetxattr(f.p("tree"), "user.d", []byte("2"), 0))
			if v, _ := f.getxattr("tree", "user.d"); v != "2" {
				f.Fatalf("dir xattr %q", v)
			}
		},
		"ino/stable-across-copyup": func(f fsT) {
			before := f.stat("etc/passwd").Ino
			f.appendTo("etc/passwd", "x")
			if after := f.stat("etc/passwd").Ino; after != before {
				f.Fatalf("ino %d became %d", before, after)
			}
		},
		"hardlink/copyup-keeps-group": func(f fsT) {
			ino := f.stat("links/a").Ino
			f.appendTo("links/a", "+")
			for _, p := range []string{"links/a", "links/b", "bin/c-link"} {
				f.wantContent(p, "hardlinked content+")
				if st := f.stat(p); st.Ino != ino || st.Nlink != 3 {
					f.Fatalf("%s: ino %d (want %d) nlink %d", p, st.Ino, ino, st.Nlink)
				}
			}
		},
		"hardlink/new-link-to-lower": func(f fsT) {
			f.ok(os.Link(f.p("bin/ping"), f.p("tmp/ping2")))
			a, b := f.stat("bin/ping"), f.stat("tmp/ping2")
			if a.Ino != b.Ino || a.Nlink != 2 {
				f.Fatalf("ino %d/%d nlink %d", a.Ino, b.Ino, a.Nlink)
			}
			f.appendTo("tmp/ping2", "!")
			f.wantContent("bin/ping", "ping binary!")
		},
		"hardlink/unlink-one": func(f fsT) {
			f.ok(os.Remove(f.p("links/b")))
			if st := f.stat("links/a"); st.Nlink != 2 {
				f.Fatalf("nlink %d", st.Nlink)
			}
			f.wantContent("bin/c-link", "hardlinked content")
		},
		"statfs": func(f fsT) {
			var s unix.Statfs_t
			f.ok(unix.Statfs(f.dir, &s))
			if s.Bsize == 0 || s.Blocks == 0 {
				f.Fatalf("statfs %+v", s)
			}
		},
	}
}

func nameCases() map[string]func(f fsT) {
	return map[string]func(f fsT){
		"unlink/lower": func(f fsT) {
			f.ok(os.Remove(f.p("bin/tool")))
			f.gone("bin/tool")
			f.wantNames("bin", "c-link", "ping", "sg", "sh")
		},
		"unlink/upper": func(f fsT) {
			f.write("tmp/u", "u")
			f.ok(os.Remove(f.p("tmp/u")))
			f.gone("tmp/u")
			f.wantNames("tmp")
		},
		"unlink/recreate": func(f fsT) {
			f.ok(os.Remove(f.p("etc/passwd")))
			f.write("etc/passwd", "new")
			f.wantContent("etc/passwd", "new")
		},
		"unlink/device-fifo-symlink": func(f fsT) {
			for _, p := range []string{"dev/null", "dev/sda", "dev/fifo", "bin/sh"} {
				f.ok(os.Remove(f.p(p)))
			}
			f.wantNames("dev")
		},
		"rename/lower-file-same-dir": func(f fsT) {
			f.ok(os.Rename(f.p("bin/ping"), f.p("bin/pong")))
			f.gone("bin/ping")
			f.wantContent("bin/pong", "ping binary")
		},
		"rename/lower-file-other-dir": func(f fsT) {
			ino := f.stat("home/user/notes").Ino
			f.ok(os.Rename(f.p("home/user/notes"), f.p("tmp/notes")))
			f.gone("home/user/notes")
			if st := f.stat("tmp/notes"); st.Ino != ino || st.Uid != 1000 {
				f.Fatalf("moved file: ino %d (was %d) uid %d", st.Ino, ino, st.Uid)
			}
		},
		"rename/over-lower-file": func(f fsT) {
			f.write("tmp/new", "replacement")
			f.ok(os.Rename(f.p("tmp/new"), f.p("etc/passwd")))
			f.wantContent("etc/passwd", "replacement")
			f.gone("tmp/new")
		},
		"rename/lower-dir": func(f fsT) {
			f.ok(os.Rename(f.p("tree"), f.p("tree2")))
			f.gone("tree")
			f.wantContent("tree2/sub/deep/file", "deep\n")
			f.wantNames("tree2", "sub", "x")
			f.write("tree2/sub/z", "z")
			f.ok(os.Remove(f.p("tree2/x")))
			f.wantNames("tree2", "sub")
		},
		"rename/lower-dir-into-other-dir": func(f fsT) {
			f.ok(os.Rename(f.p("tree/sub"), f.p("home/sub")))
			f.wantNames("tree", "x")
			f.wantContent("home/sub/deep/file", "deep\n")
			f.appendTo("home/sub/y", "+")
			f.wantContent("home/sub/y", "y\n+")
		},
		"rename/lower-dir-twice": func(f fsT) {
			f.ok(os.Rename(f.p("tree/sub"), f.p("sub1")))
			f.ok(os.Rename(f.p("sub1"), f.p("tmp/sub2")))
			f.wantContent("tmp/sub2/deep/file", "deep\n")
			f.wantNames("tree", "x")
		},
		"rename/dir-over-empty-lower-dir": func(f fsT) {
			f.ok(os.Mkdir(f.p("tmp/d"), 0o755))
			f.write("tmp/d/f", "f")
			f.ok(unix.Rename(f.p("tmp/d"), f.p("empty-dir")))
			f.wantNames("empty-dir", "f")
		},
		"rename/lower-dir-over-emptied-dir": func(f fsT) {
			f.ok(os.Remove(f.p("tree/x")))
			f.ok(os.RemoveAll(f.p("tree/sub")))
			f.ok(unix.Rename(f.p("home"), f.p("tree")))
			f.wantNames("tree", "user")
			f.wantContent("tree/user/notes", "notes of user\n")
		},
		"rename/noreplace": func(f fsT) {
			err := unix.Renameat2(unix.AT_FDCWD, f.p("bin/ping"), unix.AT_FDCWD, f.p("bin/sg"), unix.RENAME_NOREPLACE)
			f.errno(err, unix.EEXIST)
			f.ok(unix.Renameat2(unix.AT_FDCWD, f.p("bin/ping"), unix.AT_FDCWD, f.p("bin/new"), unix.RENAME_NOREPLACE))
		},
		"rename/exchange-lower-files": func(f fsT) {
			err := unix.Renameat2(unix.AT_FDCWD, f.p("bin/ping"), unix.AT_FDCWD, f.p("bin/sg"), unix.RENAME_EXCHANGE)
			if err == unix.EINVAL || err == unix.EXDEV {
				f.Skipf("RENAME_EXCHANGE not supported here: %v", err)
			}
			f.ok(err)
			f.wantContent("bin/ping", "setgid")
			f.wantContent("bin/sg", "ping binary")
		},
		"symlink/create-and-read": func(f fsT) {
			f.ok(os.Symlink("../etc/passwd", f.p("tmp/l")))
			if t, err := os.Readlink(f.p("tmp/l")); err != nil || t != "../etc/passwd" {
				f.Fatalf("readlink %q %v", t, err)
			}
			f.wantContent("tmp/l", "root:x:0:0:root:/root:/bin/sh\n")
			if t, _ := os.Readlink(f.p("dangling")); t != "no/such/target" {
				f.Fatalf("lower readlink %q", t)
			}
		},
		"mknod/fifo-and-device": func(f fsT) {
			f.ok(unix.Mkfifo(f.p("tmp/fifo"), 0o600))
			f.ok(unix.Mknod(f.p("tmp/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
			if st := f.stat("tmp/null"); st.Rdev != unix.Mkdev(1, 3) {
				f.Fatalf("rdev %x", st.Rdev)
			}
		},
		"names/special": func(f fsT) {
			f.wantContent("names/new\nline", "new\nline")
			f.write("names/\x01ctl", "c")
			long := string(bytes.Repeat([]byte("n"), 255))
			f.write("tmp/"+long, "long")
			f.wantContent("tmp/"+long, "long")
			f.errno(os.WriteFile(f.p("tmp/"+long+"n"), nil, 0o644), unix.ENAMETOOLONG)
			var st unix.Stat_t
			f.errno(unix.Lstat(f.p("bin/"+long+"n"), &st), unix.ENAMETOOLONG)
		},
	}
}

func dirCases() map[string]func(f fsT) {
	return map[string]func(f fsT){
		"rmdir/lower-empty": func(f fsT) {
			f.ok(os.Remove(f.p("empty-dir")))
			f.gone("empty-dir")
		},
		"rmdir/nonempty": func(f fsT) {
			f.errno(unix.Rmdir(f.p("tree")), unix.ENOTEMPTY)
		},
		"rmdir/after-emptying-lower": func(f fsT) {
			f.ok(os.RemoveAll(f.p("tree")))
			f.gone("tree")
		},
		"dir/replace-lower-dir": func(f fsT) {
			f.ok(os.RemoveAll(f.p("tree")))
			f.ok(os.Mkdir(f.p("tree"), 0o700))
			f.wantNames("tree")
			f.write("tree/x", "new x")
			f.wantNames("tree", "x")
			f.wantContent("tree/x", "new x")
		},
		"dir/replace-file-with-dir": func(f fsT) {
			f.ok(os.Remove(f.p("empty-file")))
			f.ok(os.Mkdir(f.p("empty-file"), 0o755))
			f.wantNames("empty-file")
		},
		"dir/replace-dir-with-file": func(f fsT) {
			f.ok(os.RemoveAll(f.p("tree")))
			f.write("tree", "now a file")
			f.wantContent("tree", "now a file")
		},
		"dir/create-deep-in-lower": func(f fsT) {
			f.write("tree/sub/deep/new", "n")
			f.wantNames("tree/sub/deep", "file", "new")
			if st := f.stat("tree/sub"); st.Mode != unix.S_IFDIR|0o755 {
				f.Fatalf("copied-up parent mode %o", st.Mode)
			}
		},
		"dir/mkdir-rmdir-upper": func(f fsT) {
			f.ok(os.MkdirAll(f.p("tmp/a/b/c"), 0o755))
			f.ok(os.RemoveAll(f.p("tmp/a")))
			f.wantNames("tmp")
		},
		"readdir/merged": func(f fsT) {
			f.write("bin/new", "n")
			f.ok(os.Remove(f.p("bin/sg")))
			f.wantNames("bin", "c-link", "new", "ping", "sh", "tool")
		},
		"readdir/many-entries": func(f fsT) {
			if n := len(f.names("many")); n != ManyEntries {
				f.Fatalf("%d entries", n)
			}
			for i := 0; i < 100; i++ {
				f.ok(os.Remove(f.p(fmt.Sprintf("many/f%04d", i))))
			}
			for i := 0; i < 50; i++ {
				f.write(fmt.Sprintf("many/n%04d", i), "n")
			}
			if n := len(f.names("many")); n != ManyEntries-50 {
				f.Fatalf("%d entries after changes", n)
			}
		},
		"readdir/offsets-stable": func(f fsT) {
			d, err := os.Open(f.p("many"))
			f.ok(err)
			defer d.Close()
			seen := map[string]bool{}
			for {
				names, err := d.Readdirnames(7)
				for _, n := range names {
					if seen[n] {
						f.Fatalf("%s listed twice", n)
					}
					seen[n] = true
				}
				if err != nil {
					break
				}
			}
			if len(seen) != ManyEntries {
				f.Fatalf("%d entries", len(seen))
			}
			_, err = d.Seek(0, 0)
			f.ok(err)
			names, err := d.Readdirnames(-1)
			f.ok(err)
			if len(names) != ManyEntries {
				f.Fatalf("%d entries after rewind", len(names))
			}
		},
	}
}

func miscCases() map[string]func(f fsT) {
	return map[string]func(f fsT){
		"locks/flock-and-ofd": func(f fsT) {
			a, err := os.OpenFile(f.p("etc/passwd"), os.O_RDWR, 0)
			f.ok(err)
			defer a.Close()
			b, err := os.OpenFile(f.p("etc/passwd"), os.O_RDWR, 0)
			f.ok(err)
			defer b.Close()
			f.ok(unix.Flock(int(a.Fd()), unix.LOCK_EX|unix.LOCK_NB))
			f.errno(unix.Flock(int(b.Fd()), unix.LOCK_EX|unix.LOCK_NB), unix.EWOULDBLOCK)
			f.ok(unix.Flock(int(a.Fd()), unix.LOCK_UN))
			lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: 0, Len: 10}
			f.ok(unix.FcntlFlock(a.Fd(), unix.F_OFD_SETLK, &lk))
			lk2 := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: 5, Len: 10}
			f.errno(unix.FcntlFlock(b.Fd(), unix.F_OFD_SETLK, &lk2), unix.EAGAIN)
			probe := unix.Flock_t{Type: unix.F_WRLCK, Start: 0, Len: 1}
			f.ok(unix.FcntlFlock(b.Fd(), unix.F_OFD_GETLK, &probe))
			if probe.Type != unix.F_WRLCK {
				f.Fatalf("F_OFD_GETLK sees no lock: %+v", probe)
			}
		},
		"tmpfile/o-tmpfile": func(f fsT) {
			fd, err := unix.Open(f.p("tmp"), unix.O_TMPFILE|unix.O_RDWR, 0o600)
			if err == unix.EOPNOTSUPP {
				return
			}
			f.ok(err)
			defer unix.Close(fd)
			_, err = unix.Write(fd, []byte("tmp"))
			f.ok(err)
			f.wantNames("tmp")
		},
		"setattr/open-fd-fchmod-futimes": func(f fsT) {
			fd, err := os.OpenFile(f.p("bin/sg"), os.O_RDWR, 0)
			f.ok(err)
			f.ok(fd.Chmod(0o600))
			when := time.Unix(5000, 0)
			f.ok(os.Chtimes(f.p("bin/sg"), when, when))
			f.ok(fd.Close())
			if st := f.stat("bin/sg"); st.Mode != unix.S_IFREG|0o600 || st.Mtim.Sec != 5000 {
				f.Fatalf("mode %o mtime %v", st.Mode, st.Mtim)
			}
		},
		"access/execute-lower": func(f fsT) {
			f.ok(unix.Access(f.p("bin/tool"), unix.X_OK))
			if err := unix.Access(f.p("etc/passwd"), unix.X_OK); err == nil {
				f.Fatal("etc/passwd is executable")
			} else {
				f.errno(err, syscall.EACCES)
			}
		},
	}
}
