package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/acetate/acetate/internal/testtree"
	"github.com/acetate/acetate/internal/treecmp"
)

// cp round trip on both drivers, stopped (mounted for the copy) and
// running (through its init's root): a crafted tree copied in and out
// again is exact (tree compare); the copy in, seen through the mount,
// is exact device nodes included; a device node is not copied out to the
// host, only as a tar stream; bad arguments are usage errors.
func TestCpRoundTrip(t *testing.T) {
	root := debianStore(t)
	src := t.TempDir()
	testtree.Crafted(t, src)
	noDev := filepath.Join(t.TempDir(), "nodev")
	testtree.CopyTree(t, src, noDev)
	os.RemoveAll(filepath.Join(noDev, "dev"))
	for _, driver := range []string{"overlay", "fuse"} {
		name := "cp-" + driver
		ok(t, run(t, root, nil, "create", name, "--from", "debian", "--driver", driver))
		ok(t, run(t, root, nil, "cp", src, name+":/data"))
		if r := run(t, root, nil, "ps", "-a"); strings.Contains(r.stdout, root) {
			t.Fatalf("%s: left mounted after cp: %s", driver, r.stdout)
		}
		mnt := strings.TrimSpace(ok(t, run(t, root, nil, "mount", name)).stdout)
		err := treecmp.Compare(src, filepath.Join(mnt, "data"), treecmp.Options{IgnoreXattrPrefixes: []string{"trusted.overlay."}})
		ok(t, run(t, root, nil, "unmount", name))
		if err != nil {
			t.Fatalf("%s: copied in: %v", driver, err)
		}
		r := run(t, root, nil, "cp", name+":/data", t.TempDir())
		if r.code != 1 || !strings.Contains(r.stderr, "device node") {
			t.Errorf("%s: device nodes copied to the host: %+v", driver, r)
		}
		stream := ok(t, run(t, root, nil, "cp", name+":/data/dev", "-")).stdout
		if names := tarNames(t, stream); !strings.Contains(names, "dev/sda") {
			t.Errorf("%s: stream of /data/dev: %s", driver, names)
		}
		ok(t, run(t, root, nil, "run", name, "--", "rm", "-r", "/data/dev"))

		// Running: the copy goes through the container's own root.
		ok(t, run(t, root, nil, "start", name, "--", "sleep", "1000"))
		t.Cleanup(func() { run(t, root, nil, "stop", "--time", "0", name) })
		out := filepath.Join(t.TempDir(), "out")
		ok(t, run(t, root, nil, "cp", name+":/data", out))
		if err := treecmp.Compare(noDev, out, treecmp.Options{IgnoreDirMtime: true}); err != nil {
			t.Errorf("%s: copied out of a running container: %v", driver, err)
		}
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		tw.WriteHeader(&tar.Header{Name: "in", Typeflag: tar.TypeReg, Mode: 0o644, Size: 3})
		tw.Write([]byte("in\n"))
		tw.Close()
		ok(t, run(t, root, b.Bytes(), "cp", "-", name+":/tmp"))
		ok(t, run(t, root, nil, "cp", filepath.Join(src, "home/user/notes"), name+":/tmp/"))
		if r := ok(t, run(t, root, nil, "exec", name, "--", "cat", "/tmp/notes", "/tmp/in")); r.stdout != "notes of user\nin\n" {
			t.Errorf("%s: copied into a running container: %q", driver, r.stdout)
		}
		ok(t, run(t, root, nil, "stop", "--time", "0", name))
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"cp", "a", "b"}, "NAME:PATH"},
		{[]string{"cp", "cp-fuse:/a", "cp-overlay:/b"}, "between two containers"},
		{[]string{"cp", "Bad_Name!:/a", "b"}, "Bad_Name!"},
		{[]string{"cp", "cp-fuse:"}, "accepts 2 arg"},
	} {
		if r := run(t, root, nil, c.args...); r.code != 2 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("acetate %v: exit %d %q; want 2 and %q", c.args, r.code, r.stderr, c.want)
		}
	}
	if r := run(t, root, nil, "cp", "no-such:/a", t.TempDir()); r.code != 3 {
		t.Errorf("cp from a missing container: exit %d %q", r.code, r.stderr)
	}
}

// tarNames lists the entries of a tar stream.
func tarNames(t *testing.T, stream string) string {
	t.Helper()
	tr := tar.NewReader(strings.NewReader(stream))
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return strings.Join(names, " ")
		}
		if err != nil {
			t.Fatalf("tar stream: %v", err)
		}
		names = append(names, h.Name)
	}
}

// Escapes: a container's links to host paths (../../.. and absolute)
// resolve inside its root, in both directions, also while the container
// races to swap a directory for such a link (a loop of a fixed number of
// rounds inside the running container). No copy reads or writes the
// host's file; a copy that loses the race fails with an error.
func TestCpEscapes(t *testing.T) {
	root := debianStore(t)
	host := t.TempDir() // stands for a host directory the container names
	if err := os.WriteFile(filepath.Join(host, "secret"), []byte("host secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	hostShadow, _ := os.ReadFile("/etc/shadow")
	ok(t, run(t, root, nil, "run", "--from", "debian", "cpesc", "--", "sh", "-c",
		"ln -s ../../../../../../../etc /up && mkdir -p /d && echo container > /d/secret && ln -s "+host+" /hostlink"))
	out := t.TempDir()
	ok(t, run(t, root, nil, "cp", "cpesc:/up/shadow", filepath.Join(out, "a")))
	ok(t, run(t, root, nil, "cp", "cpesc:/../../../etc/shadow", filepath.Join(out, "b")))
	for _, f := range []string{"a", "b"} {
		got, _ := os.ReadFile(filepath.Join(out, f))
		if bytes.Equal(got, hostShadow) || !strings.Contains(string(got), "root:") {
			t.Errorf("cp of the container's /etc/shadow through a link read %q", got)
		}
	}
	marker := filepath.Join(t.TempDir(), "acetate-cp-test")
	os.WriteFile(marker, []byte("x"), 0o644)
	ok(t, run(t, root, nil, "cp", marker, "cpesc:/up/"))
	if _, err := os.Stat("/etc/acetate-cp-test"); err == nil {
		os.Remove("/etc/acetate-cp-test")
		t.Fatal("cp into ../../etc in the container wrote the host's /etc")
	}
	if r := ok(t, run(t, root, nil, "run", "cpesc", "--", "cat", "/etc/acetate-cp-test")); r.stdout != "x" {
		t.Errorf("the copy did not land in the container's /etc: %q", r.stdout)
	}
	if r := run(t, root, nil, "cp", "cpesc:/hostlink/secret", filepath.Join(out, "c")); r.code == 0 || !strings.Contains(r.stderr, "no such file") {
		t.Errorf("cp through a link to a host directory: %+v", r)
	}
	// A tar stream whose entry climbs out, or goes through a link it made.
	for _, entries := range [][]tar.Header{
		{{Name: "../../../../../.." + host + "/climbed", Typeflag: tar.TypeReg}},
		{{Name: "l", Typeflag: tar.TypeSymlink, Linkname: host}, {Name: "l/through-link", Typeflag: tar.TypeReg}},
	} {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		for _, h := range entries {
			h.Mode = 0o644
			tw.WriteHeader(&h)
		}
		tw.Close()
		if r := run(t, root, b.Bytes(), "cp", "-", "cpesc:/tmp"); r.code != 1 || !strings.Contains(r.stderr, "leaves the destination directory") {
			t.Errorf("cp of a tar stream with %q: %+v", entries[len(entries)-1].Name, r)
		}
	}
	if ents, _ := os.ReadDir(host); len(ents) != 1 {
		t.Fatalf("a tar stream wrote into the host's directory: %v", ents)
	}

	// The race: /d and the link to the host directory swap places.
	ok(t, run(t, root, nil, "start", "cpesc", "--", "sh", "-c", exchangeLoop("/d", "/hostlink")+" & sleep 1000"))
	defer run(t, root, nil, "stop", "--time", "0", "cpesc")
	lost := 0
	for i := range 20 {
		o := filepath.Join(out, fmt.Sprint("race", i))
		if r := run(t, root, nil, "cp", "cpesc:/d/secret", o); r.code != 0 {
			lost++
		}
		if b, _ := os.ReadFile(o); string(b) == "host secret" {
			t.Fatalf("round %d: cp read the host's file", i)
		}
		run(t, root, nil, "cp", marker, "cpesc:/d/")
		if _, err := os.Stat(filepath.Join(host, "acetate-cp-test")); err == nil {
			t.Fatalf("round %d: cp wrote into the host's directory", i)
		}
	}
	t.Logf("%d of 20 copies out lost the race with an error", lost)
}
