package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acetate/acetate/internal/treecmp"
)

// export of a running container (frozen for it) and of a stopped one, to
// a file and to standard output; import from a file and standard input,
// under another name; kill -9 during export and import changes nothing
// but what a whole run would.
func TestExportImportCLI(t *testing.T) {
	root := debianStore(t)
	startCounter(t, root, "c")
	dir := t.TempDir()
	live := filepath.Join(dir, "live.tar")
	r := ok(t, run(t, root, nil, "export", "c", live))
	if !strings.Contains(r.stdout, "frozen for") {
		t.Errorf("export of a running container does not say it froze it: %q", r.stdout)
	}
	ok(t, run(t, root, nil, "stop", "--time", "0", "c"))
	fillUpper(t, root, "c", "f", 32)
	ok(t, run(t, root, nil, "snapshot", "create", "c", "s1"))
	archive := filepath.Join(dir, "c.tar")
	ok(t, run(t, root, nil, "export", "c", archive))
	stdout := ok(t, run(t, root, nil, "export", "c", "-")).stdout
	upperOf := func(name string) string { return filepath.Join(root, "containers", name, "upper") }
	same := func(a, b string) bool { return treecmp.Compare(upperOf(a), upperOf(b), treecmp.Options{}) == nil }

	ok(t, run(t, root, nil, "import", archive, "c2"))
	ok(t, run(t, root, []byte(stdout), "import", "-", "c3"))
	for _, n := range []string{"c2", "c3"} {
		if !same("c", n) {
			t.Errorf("%s differs from the exported container", n)
		}
	}
	if got := snapshots(t, root, "c3"); len(got) != 1 || got[0].Name != "s1" {
		t.Errorf("imported snapshots: %+v", got)
	}
	if r := run(t, root, nil, "import", archive, "c2"); r.code == 0 || !strings.Contains(r.stderr, "exists") {
		t.Errorf("import over an existing container: exit %d %q", r.code, r.stderr)
	}
	cut, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	if r := run(t, root, cut[:len(cut)/2], "import", "-", "c4"); r.code == 0 || !strings.Contains(r.stderr, "bad container archive") {
		t.Errorf("import of half an archive: exit %d %q", r.code, r.stderr)
	}
	if r := run(t, root, nil, "export", "c"); r.code != exitUsage {
		t.Errorf("export without FILE: exit %d", r.code)
	}

	// kill -9 within a run's measured time.
	out := filepath.Join(dir, "killed.tar")
	start := time.Now()
	ok(t, run(t, root, nil, "export", "c", out))
	took := time.Since(start)
	os.Remove(out)
	killWithin(t, root, 4, took, []string{"export", "c", out}, func(i int) {
		if !same("c", "c2") {
			t.Fatalf("after kill %d of export: the container changed", i)
		}
		if _, err := os.Stat(out); err == nil {
			if r := run(t, root, nil, "import", out, "k"); r.code != 0 {
				t.Fatalf("after kill %d of export: %s is there but does not import: %s", i, out, r.stderr)
			}
			ok(t, run(t, root, nil, "rm", "k"))
			os.Remove(out)
		}
	})
	start = time.Now()
	ok(t, run(t, root, nil, "import", archive, "k"))
	took = time.Since(start)
	ok(t, run(t, root, nil, "rm", "k"))
	killWithin(t, root, 4, took, []string{"import", archive, "k"}, func(i int) {
		if _, ok := ps(t, root)["k"]; ok {
			if !same("c", "k") {
				t.Fatalf("after kill %d of import: a container k that differs", i)
			}
			run(t, root, nil, "rm", "k")
		}
	})
	ok(t, run(t, root, nil, "gc"))
	if tmp, _ := os.ReadDir(filepath.Join(root, "tmp")); len(tmp) != 0 {
		t.Errorf("gc left %d files in tmp/", len(tmp))
	}
}
