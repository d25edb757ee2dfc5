package fstest

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// Case is one behaviour, checked on the union mounted at dir.
type Case func(t *testing.T, dir string)

// fsT wraps a test and a mount point with helpers that fail the test on
// unexpected errors.
type fsT struct {
	*testing.T
	dir string
}

func (f fsT) p(name string) string { return filepath.Join(f.dir, name) }

func (f fsT) ok(err error) {
	f.Helper()
	if err != nil {
		f.Fatal(err)
	}
}

// errno checks that err is want.
func (f fsT) errno(err error, want syscall.Errno) {
	f.Helper()
	if !errors.Is(err, want) {
		f.Fatalf("got error %v, want %v", err, want)
	}
}

func (f fsT) read(name string) []byte {
	f.Helper()
	b, err := os.ReadFile(f.p(name))
	f.ok(err)
	return b
}

func (f fsT) wantContent(name, want string) {
	f.Helper()
	if got := f.read(name); !bytes.Equal(got, []byte(want)) {
		f.Fatalf("%s: content %q, want %q", name, got, want)
	}
}

func (f fsT) write(name, content string) {
	f.Helper()
	f.ok(os.WriteFile(f.p(name), []byte(content), 0o644))
}

func (f fsT) appendTo(name, content string) {
	f.Helper()
	fd, err := os.OpenFile(f.p(name), os.O_WRONLY|os.O_APPEND, 0)
	f.ok(err)
	_, err = fd.WriteString(content)
	f.ok(err)
	f.ok(fd.Close())
}

func (f fsT) stat(name string) *unix.Stat_t {
	f.Helper()
	var st unix.Stat_t
	f.ok(unix.Lstat(f.p(name), &st))
	return &st
}

func (f fsT) gone(name string) {
	f.Helper()
	var st unix.Stat_t
	f.errno(unix.Lstat(f.p(name), &st), syscall.ENOENT)
}

func (f fsT) names(dir string) []string {
	f.Helper()
	d, err := os.Open(f.p(dir))
	f.ok(err)
	defer d.Close()
	names, err := d.Readdirnames(-1)
	f.ok(err)
	slices.Sort(names)
	return names
}

func (f fsT) wantNames(dir string, want ...string) {
	f.Helper()
	slices.Sort(want)
	if got := f.names(dir); !slices.Equal(got, want) {
		f.Fatalf("%s lists %q, want %q", dir, got, want)
	}
}

func (f fsT) getxattr(name, attr string) (string, error) {
	buf := make([]byte, 4096)
	n, err := unix.Lgetxattr(f.p(name), attr, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

func (f fsT) listxattr(name string) []string {
	f.Helper()
	buf := make([]byte, 4096)
	n, err := unix.Llistxattr(f.p(name), buf)
	f.ok(err)
	var out []string
	for _, s := range bytes.Split(buf[:n], []byte{0}) {
		if len(s) > 0 {
			out = append(out, string(s))
		}
	}
	slices.Sort(out)
	return out
}

// cases wraps functions of fsT into Cases.
func cases(m map[string]func(f fsT)) map[string]Case {
	out := make(map[string]Case, len(m))
	for name, fn := range m {
		out[name] = func(t *testing.T, dir string) { fn(fsT{T: t, dir: dir}) }
	}
	return out
}
