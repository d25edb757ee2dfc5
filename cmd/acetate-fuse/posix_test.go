package main

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// onBoth runs check on a fresh union of the layers setup fills (n lower
// directories, top first) under kernel overlayfs and under acetate-fuse,
// so that every assertion holds for the reference too.
func onBoth(t *testing.T, n int, setup func(t *testing.T, s *stack), check func(t *testing.T, mnt string)) {
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			s := newStack(t, n)
			setup(t, s)
			check(t, tg.mount(t, s.options()))
		})
	}
}

func wantErrno(t *testing.T, what string, err error, want syscall.Errno) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: got %v, want %v", what, err, want)
	}
}

func TestNameMax(t *testing.T) {
	name := strings.Repeat("n", 255)
	onBoth(t, 1, func(t *testing.T, s *stack) {
		write(t, s.lower[0], map[string]string{"lower/" + name: "below"})
	}, func(t *testing.T, mnt string) {
		if b, err := os.ReadFile(filepath.Join(mnt, "lower", name)); err != nil || string(b) != "below" {
			t.Errorf("read lower file with a 255-byte name: %q, %v", b, err)
		}
		if err := os.WriteFile(filepath.Join(mnt, "lower", name), []byte("w"), 0o644); err != nil {
			t.Errorf("write lower file with a 255-byte name: %v", err)
		}
		if err := os.WriteFile(filepath.Join(mnt, strings.Repeat("u", 255)), []byte("u"), 0o644); err != nil {
			t.Errorf("create a 255-byte name: %v", err)
		}
		if err := os.Mkdir(filepath.Join(mnt, strings.Repeat("d", 255)), 0o755); err != nil {
			t.Errorf("mkdir a 255-byte name: %v", err)
		}
		long := name + "x"
		_, err := os.Lstat(filepath.Join(mnt, long))
		wantErrno(t, "stat a 256-byte name", err, syscall.ENAMETOOLONG)
		_, err = os.Create(filepath.Join(mnt, long))
		wantErrno(t, "create a 256-byte name", err, syscall.ENAMETOOLONG)
		wantErrno(t, "mkdir a 256-byte name", os.Mkdir(filepath.Join(mnt, long), 0o755), syscall.ENAMETOOLONG)
		wantErrno(t, "rename to a 256-byte name", os.Rename(filepath.Join(mnt, "lower", name), filepath.Join(mnt, long)), syscall.ENAMETOOLONG)
	})
}

// deepDir is a relative path of directories with 200-byte names, 4000
// bytes long.
func deepDir() string {
	var parts []string
	for range 4000 / 201 {
		parts = append(parts, strings.Repeat("p", 200))
	}
	return strings.Join(parts, "/")
}

func TestPathMax(t *testing.T) {
	deep := deepDir()
	onBoth(t, 1, func(t *testing.T, s *stack) {
		write(t, s.lower[0], map[string]string{deep + "/f": "deep"})
	}, func(t *testing.T, mnt string) {
		dirfd, err := unix.Open(mnt, unix.O_PATH|unix.O_DIRECTORY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(dirfd)
		fd, err := unix.Openat(dirfd, deep+"/f", unix.O_RDONLY, 0)
		if err != nil {
			t.Fatalf("open a lower file %d bytes deep: %v", len(deep)+2, err)
		}
		unix.Close(fd)
		fd, err = unix.Openat(dirfd, deep+"/new", unix.O_WRONLY|unix.O_CREAT, 0o644)
		if err != nil {
			t.Fatalf("create a file %d bytes deep: %v", len(deep)+4, err)
		}
		unix.Close(fd)
		tooLong := deep + "/" + strings.Repeat("q", 4096-len(deep))
		_, err = unix.Openat(dirfd, tooLong, unix.O_RDONLY, 0)
		wantErrno(t, "open a path of 4097 bytes", err, syscall.ENAMETOOLONG)
	})
}

func TestRenameLowerDir(t *testing.T) {
	onBoth(t, 2, func(t *testing.T, s *stack) {
		write(t, s.lower[1], map[string]string{"d/a": "a", "d/sub/b": "b"})
		write(t, s.lower[0], map[string]string{"d/c": "c"})
	}, func(t *testing.T, mnt string) {
		if err := os.Rename(filepath.Join(mnt, "d"), filepath.Join(mnt, "e")); err != nil {
			t.Fatalf("rename a lower directory: %v", err)
		}
		for p, want := range map[string]string{"e/a": "a", "e/sub/b": "b", "e/c": "c"} {
			if b, err := os.ReadFile(filepath.Join(mnt, p)); err != nil || string(b) != want {
				t.Errorf("%s after rename: %q, %v", p, b, err)
			}
		}
		if _, err := os.Lstat(filepath.Join(mnt, "d")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("old name after rename: %v", err)
		}
	})
}

func TestUnlinkedOpenFile(t *testing.T) {
	onBoth(t, 1, func(t *testing.T, s *stack) {
		write(t, s.lower[0], map[string]string{"w": "write"})
	}, func(t *testing.T, mnt string) { checkUnlinkedNlink(t, filepath.Join(mnt, "w"), os.O_RDWR) })
}

// A lower file open read-only and unlinked: kernel overlayfs reports the
// lower file's nlink (1) here, acetate-fuse 0.
func TestUnlinkedOpenLowerFile(t *testing.T) {
	s := newStack(t, 1)
	write(t, s.lower[0], map[string]string{"r": "read"})
	checkUnlinkedNlink(t, filepath.Join(mountAcetate(t, s.options()), "r"), os.O_RDONLY)
}

// checkUnlinkedNlink opens p with flag, unlinks it and wants fstat to say
// nlink 0.
func checkUnlinkedNlink(t *testing.T, p string, flag int) {
	t.Helper()
	f, err := os.OpenFile(p, flag, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		t.Errorf("fstat after unlink: %v", err)
	} else if st.Nlink != 0 {
		t.Errorf("fstat after unlink: nlink %d, want 0", st.Nlink)
	}
}

// Kernel overlayfs keeps hardlinks across copy-up only with index=on, so
// this is acetate-fuse's alone.
func TestHardlinkCopyUp(t *testing.T) {
	s := newStack(t, 2)
	write(t, s.lower[1], map[string]string{"d/a": "x"})
	if err := os.Link(filepath.Join(s.lower[1], "d/a"), filepath.Join(s.lower[1], "b")); err != nil {
		t.Fatal(err)
	}
	mnt := mountAcetate(t, s.options())
	before := statOf(t, filepath.Join(mnt, "b"))
	if before.Nlink != 2 || before.Ino != statOf(t, filepath.Join(mnt, "d/a")).Ino {
		t.Fatalf("lower hardlinks: nlink %d, inos differ or not", before.Nlink)
	}
	f, err := os.OpenFile(filepath.Join(mnt, "d/a"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("y")
	f.Close()
	a, b := statOf(t, filepath.Join(mnt, "d/a")), statOf(t, filepath.Join(mnt, "b"))
	if a.Ino != before.Ino || b.Ino != before.Ino || b.Nlink != 2 {
		t.Errorf("after copy-up: inos %d %d (before %d), nlink %d", a.Ino, b.Ino, before.Ino, b.Nlink)
	}
	if got, _ := os.ReadFile(filepath.Join(mnt, "b")); string(got) != "xy" {
		t.Errorf("other link after copy-up reads %q, want xy", got)
	}
}

func statOf(t *testing.T, p string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func TestMmapAcrossCopyUp(t *testing.T) {
	content := strings.Repeat("m", 3*4096)
	onBoth(t, 1, func(t *testing.T, s *stack) {
		write(t, s.lower[0], map[string]string{"f": content})
	}, func(t *testing.T, mnt string) {
		p := filepath.Join(mnt, "f")
		r, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		m, err := unix.Mmap(int(r.Fd()), 0, len(content), unix.PROT_READ, unix.MAP_SHARED)
		if err != nil {
			t.Fatalf("mmap: %v", err)
		}
		defer unix.Munmap(m)
		if string(m[:4]) != "mmmm" {
			t.Fatalf("mapping reads %q", m[:4])
		}
		w, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			t.Fatalf("open for writing (copy-up): %v", err)
		}
		if _, err := w.WriteAt([]byte("W"), 4096); err != nil {
			t.Fatal(err)
		}
		w.Close()
		// The mapping stays readable; it shows the data as of the copy-up
		// (overlayfs) or the new data (one page cache), never a fault.
		if got := m[4096]; got != 'm' && got != 'W' {
			t.Errorf("mapping after copy-up reads %q", got)
		}
		if got := string(m[2*4096 : 2*4096+4]); got != "mmmm" {
			t.Errorf("mapping after copy-up reads %q", got)
		}
		if b, _ := os.ReadFile(p); len(b) != len(content) || b[4096] != 'W' {
			t.Errorf("file after copy-up: %d bytes, byte 4096 %q", len(b), b[4096])
		}
	})
}

// Two layers on two fresh tmpfs mounts have files with the same inode
// number; the union shows them with different ones, on the mount's
// device. (Kernel overlayfs without xino shows both numbers as they are,
// with each layer's st_dev, so it is no reference here.)
func TestUniqueInodes(t *testing.T) {
	s := newStack(t, 2)
	for _, d := range s.lower {
		if err := unix.Mount("tmpfs", d, "tmpfs", 0, "mode=0755"); err != nil {
			t.Skipf("tmpfs: %v", err)
		}
		t.Cleanup(func() { unix.Unmount(d, unix.MNT_DETACH) })
	}
	write(t, s.lower[0], map[string]string{"a": "top"})
	write(t, s.lower[1], map[string]string{"b": "bottom"})
	if x, y := statOf(t, filepath.Join(s.lower[0], "a")), statOf(t, filepath.Join(s.lower[1], "b")); x.Ino != y.Ino {
		t.Fatalf("setup: tmpfs gave inode numbers %d and %d, want equal", x.Ino, y.Ino)
	}
	mnt := mountAcetate(t, s.options())
	a, b, root := statOf(t, filepath.Join(mnt, "a")), statOf(t, filepath.Join(mnt, "b")), statOf(t, mnt)
	if a.Ino == b.Ino {
		t.Errorf("files from two layers share inode number %d", a.Ino)
	}
	if a.Dev != root.Dev || b.Dev != root.Dev {
		t.Errorf("st_dev: a %d, b %d, mount %d", a.Dev, b.Dev, root.Dev)
	}
	f, err := os.OpenFile(filepath.Join(mnt, "b"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if up := statOf(t, filepath.Join(mnt, "b")); up.Ino != b.Ino || up.Dev != root.Dev {
		t.Errorf("after copy-up: ino %d dev %d, before ino %d dev %d", up.Ino, up.Dev, b.Ino, root.Dev)
	}
}

// Inode numbers stay the same across a copy-up and a remount.
func TestStableInodes(t *testing.T) {
	s := newStack(t, 2)
	write(t, s.lower[0], map[string]string{"a": "top"})
	write(t, s.lower[1], map[string]string{"b": "bottom", "d/c": "c", "d/e": "e"})
	paths := []string{"a", "b", "d", "d/c", "d/e"}
	var rounds [3][]uint64
	for i := range rounds {
		t.Run("mount", func(t *testing.T) {
			mnt := mountAcetate(t, s.options())
			for _, p := range paths {
				rounds[i] = append(rounds[i], statOf(t, filepath.Join(mnt, p)).Ino)
			}
			if i == 0 {
				// Copy up a file, a directory and a file's metadata.
				f, err := os.OpenFile(filepath.Join(mnt, "b"), os.O_WRONLY|os.O_APPEND, 0)
				if err != nil {
					t.Fatal(err)
				}
				f.Close()
				if err := os.Chmod(filepath.Join(mnt, "d/c"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
	for i := 1; i < len(rounds); i++ {
		if !slices.Equal(rounds[0], rounds[i]) {
			t.Errorf("inode numbers of %q: %v, after copy-ups and %d remounts %v", paths, rounds[0], i, rounds[i])
		}
	}
}

// Without upperdir, or with ro, the mount is read-only: reads work, every
// change is EROFS, and nothing reaches the directories.
func TestReadOnly(t *testing.T) {
	s := newStack(t, 2)
	write(t, s.lower[0], map[string]string{"top": "t"})
	write(t, s.lower[1], map[string]string{"bottom": "b"})
	for _, tg := range targets {
		for name, opts := range map[string]string{
			"no-upperdir": "lowerdir=" + strings.Join(s.lower, ":"),
			"ro":          s.options() + ",ro",
		} {
			if tg.name == "kernel-overlay" && name == "ro" {
				continue // for overlayfs, ro is a mount flag, not an option
			}
			t.Run(tg.name+"/"+name, func(t *testing.T) {
				mnt := tg.mount(t, opts)
				if b, err := os.ReadFile(filepath.Join(mnt, "bottom")); err != nil || string(b) != "b" {
					t.Errorf("read: %q, %v", b, err)
				}
				wantErrno(t, "write", os.WriteFile(filepath.Join(mnt, "top"), []byte("x"), 0o644), syscall.EROFS)
				wantErrno(t, "create", os.WriteFile(filepath.Join(mnt, "new"), []byte("x"), 0o644), syscall.EROFS)
				wantErrno(t, "remove", os.Remove(filepath.Join(mnt, "bottom")), syscall.EROFS)
				wantErrno(t, "chmod", os.Chmod(filepath.Join(mnt, "top"), 0o600), syscall.EROFS)
			})
		}
	}
	if names, _ := os.ReadDir(s.upper); len(names) != 0 {
		t.Errorf("upper directory of read-only mounts has %d entries", len(names))
	}
}
