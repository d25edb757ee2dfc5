package archive

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acetate/acetate/internal/testtree"
	"github.com/acetate/acetate/internal/treecmp"
	"golang.org/x/sys/unix"
)

// openRoot opens dir as a container's root would be held.
func openRoot(t *testing.T, dir string) Place {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return InRoot(fd)
}

// A tree copied into a root, out of it and through a stream comes back
// exact: content, modes, owners, ns mtimes, xattrs (security.capability
// too), links, hardlinks, nodes. Device nodes are not made on the host.
func TestRoundTrip(t *testing.T) {
	src := t.TempDir()
	testtree.Crafted(t, src)
	root := t.TempDir()
	if err := Copy(Host(), src+"/.", openRoot(t, root), "/"); err != nil {
		t.Fatal(err)
	}
	if err := treecmp.Compare(src, root, treecmp.Options{}); err != nil {
		t.Fatalf("into the root: %v", err)
	}
	var stream bytes.Buffer
	if err := WriteStream(&stream, openRoot(t, root), "/"); err != nil {
		t.Fatal(err)
	}
	other := t.TempDir()
	if err := ExtractStream(&stream, openRoot(t, other), "/"); err != nil {
		t.Fatal(err)
	}
	if err := treecmp.Compare(src, other, treecmp.Options{}); err != nil {
		t.Fatalf("through a stream: %v", err)
	}

	out := filepath.Join(t.TempDir(), "out")
	if err := Copy(openRoot(t, root), "/", Host(), out); !errors.Is(err, ErrDevice) {
		t.Fatalf("copy of device nodes to the host: %v, want ErrDevice", err)
	}
	os.RemoveAll(filepath.Join(root, "dev"))
	os.RemoveAll(out)
	if err := Copy(openRoot(t, root), "/", Host(), out); err != nil {
		t.Fatal(err)
	}
	// The root's own mtime moved with the removal of /dev.
	if err := treecmp.Compare(src, out, treecmp.Options{Skip: []string{"/dev"}, IgnoreDirMtime: true}); err != nil {
		t.Fatalf("out of the root: %v", err)
	}
	if err := treecmp.Compare(filepath.Join(src, "home"), filepath.Join(out, "home"), treecmp.Options{}); err != nil {
		t.Fatal(err)
	}
}

// docker cp's path rules: into an existing directory under the source's
// name, "dir/." for the contents, a new name made, a file replaced, and
// the refusals.
func TestPathRules(t *testing.T) {
	src := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(src, "d/sub"), 0o755))
	must(t, os.WriteFile(filepath.Join(src, "d/sub/f"), []byte("f"), 0o644))
	must(t, os.WriteFile(filepath.Join(src, "file"), []byte("new"), 0o600))
	root := t.TempDir()
	must(t, os.WriteFile(filepath.Join(root, "existing"), []byte("old content"), 0o644))
	must(t, os.Mkdir(filepath.Join(root, "into"), 0o755))
	c := openRoot(t, root)
	for _, tc := range []struct{ src, dst, want, err string }{
		{src: "d", dst: "/into", want: "into/d/sub/f"},
		{src: "d/.", dst: "/into", want: "into/sub/f"},
		{src: "d", dst: "/newdir", want: "newdir/sub/f"},
		{src: "file", dst: "/existing", want: "existing"},
		{src: "file", dst: "/into/", want: "into/file"},
		{src: "d", dst: "/existing", err: "cannot copy a directory onto a file"},
		{src: "file", dst: "/nodir/", err: "no such directory"},
		{src: "file", dst: "/no/such/parent", err: "no such file"},
		{src: "missing", dst: "/x", err: "no such file"},
	} {
		err := Copy(Host(), src+"/"+tc.src, c, tc.dst)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("cp %s %s: %v, want %q", tc.src, tc.dst, err, tc.err)
			}
			continue
		}
		if _, serr := os.Lstat(filepath.Join(root, tc.want)); err != nil || serr != nil {
			t.Errorf("cp %s %s: %v; %v", tc.src, tc.dst, err, serr)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(root, "existing")); string(b) != "new" {
		t.Errorf("replaced file holds %q", b)
	}
}

// A container's symbolic links to host paths (absolute, or ../ out of
// the root) resolve inside its root when the container's side of a copy
// names them, in both directions.
func TestLinksResolveInRoot(t *testing.T) {
	host := t.TempDir() // stands for the host's /etc
	must(t, os.WriteFile(filepath.Join(host, "shadow"), []byte("host secret"), 0o600))
	root := t.TempDir()
	must(t, os.Mkdir(filepath.Join(root, "etc"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, "etc/shadow"), []byte("container's"), 0o600))
	must(t, os.Symlink(host, filepath.Join(root, "abs")))
	must(t, os.Symlink(strings.Repeat("../", 20)+host[1:], filepath.Join(root, "up")))
	must(t, os.Symlink(filepath.Join(host, "shadow"), filepath.Join(root, "shadow-link")))
	c := openRoot(t, root)
	for _, p := range []string{"/abs/shadow", "/up/shadow", "/shadow-link/", "/../../../" + host[1:] + "/shadow"} {
		out := filepath.Join(t.TempDir(), "out")
		err := Copy(c, p, Host(), out)
		if b, _ := os.ReadFile(out); err == nil || string(b) == "host secret" {
			t.Errorf("cp %s out: %v, read %q", p, err, b)
		}
	}
	// The link's target, made inside the root.
	must(t, os.MkdirAll(filepath.Join(root, host), 0o755))
	file := filepath.Join(t.TempDir(), "pwned")
	must(t, os.WriteFile(file, []byte("x"), 0o644))
	for _, p := range []string{"/abs/", "/up/", "/../../" + host[1:] + "/"} {
		if err := Copy(Host(), file, c, p); err != nil {
			t.Errorf("cp in %s: %v", p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(host, "pwned")); err == nil {
		t.Fatal("a copy in wrote a host file")
	}
	if _, err := os.Stat(filepath.Join(root, host, "pwned")); err != nil {
		t.Fatalf("a copy in did not land inside the root: %v", err)
	}
	out := filepath.Join(t.TempDir(), "out")
	must(t, Copy(c, "/abs/pwned", Host(), out))
}

// A stream whose entries leave the directory (a name with "..", a path
// through a link it made, a hardlink to a file outside) is refused with
// ErrEscape and makes nothing outside.
func TestStreamEscapes(t *testing.T) {
	outside := t.TempDir()
	must(t, os.WriteFile(filepath.Join(outside, "shadow"), []byte("secret"), 0o600))
	for name, entries := range map[string][]tar.Header{
		"dotdot":   {{Name: "../../x", Typeflag: tar.TypeReg}},
		"absolute": {{Name: "/../../x", Typeflag: tar.TypeReg}},
		"via link": {{Name: "d", Typeflag: tar.TypeSymlink, Linkname: outside}, {Name: "d/x", Typeflag: tar.TypeReg}},
		"hardlink": {{Name: "x", Typeflag: tar.TypeLink, Linkname: "../" + filepath.Base(outside) + "/shadow"}},
	} {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		for _, h := range entries {
			h.Mode, h.ModTime = 0o644, time.Now()
			must(t, tw.WriteHeader(&h))
		}
		must(t, tw.Close())
		dir := filepath.Join(filepath.Dir(outside), "dest-"+strings.ReplaceAll(name, " ", "-"))
		must(t, os.Mkdir(dir, 0o755))
		if err := ExtractStream(&b, openRoot(t, dir), "/"); !errors.Is(err, ErrEscape) {
			t.Errorf("%s: %v, want ErrEscape", name, err)
		}
		if ents, _ := os.ReadDir(outside); len(ents) != 1 {
			t.Errorf("%s: made %v outside", name, ents)
		}
	}
}

// The race: while a copy runs, the container swaps a directory of its
// own with a symbolic link to a host directory, over and over. Every copy,
// in and out, either fails or stays inside the root; none reads or writes
// the host's file.
func TestSwapRace(t *testing.T) {
	host := t.TempDir()
	must(t, os.WriteFile(filepath.Join(host, "secret"), []byte("host"), 0o600))
	root := t.TempDir()
	data, link := filepath.Join(root, "data"), filepath.Join(root, "link")
	must(t, os.Mkdir(data, 0o755))
	must(t, os.WriteFile(filepath.Join(data, "secret"), []byte("container"), 0o600))
	must(t, os.Symlink(host, link))
	file := filepath.Join(t.TempDir(), "pwned")
	must(t, os.WriteFile(file, []byte("x"), 0o644))
	c := openRoot(t, root)
	stop := testtree.Swap([2]string{data, link})
	defer stop()
	outDir := t.TempDir()
	for i := range 300 {
		out := filepath.Join(outDir, "out")
		os.RemoveAll(out)
		Copy(c, "/data/secret", Host(), out)
		if b, _ := os.ReadFile(out); string(b) == "host" {
			t.Fatalf("round %d: read the host's file", i)
		}
		os.RemoveAll(out)
		Copy(c, "/data", Host(), out) // the link itself, when swapped in
		if fi, err := os.Lstat(out); err != nil || !fi.IsDir() {
			continue
		}
		if b, _ := os.ReadFile(filepath.Join(out, "secret")); string(b) == "host" {
			t.Fatalf("round %d: read the host's file", i)
		}
		Copy(Host(), file, c, "/data/")
		if _, err := os.Lstat(filepath.Join(host, "pwned")); err == nil {
			t.Fatalf("round %d: wrote into the host's directory", i)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
