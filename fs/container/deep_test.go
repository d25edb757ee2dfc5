package container_test

import (
	"strings"
	"testing"
	"time"

	"github.com/acetate/acetate/internal/testtree"
	"golang.org/x/sys/unix"
)

// deepTree nests levels directories of 200-byte names in dir, one
// component at a time (the whole path is far past PATH_MAX), with a file
// holding content at the bottom, and returns the file's path in the tree.
func deepTree(t *testing.T, dir string, levels int, content string) string {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.Repeat("d", 200)
	var rel strings.Builder
	for range levels {
		if err := unix.Mkdirat(fd, name, 0o755); err != nil {
			t.Fatal(err)
		}
		next, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		unix.Close(fd)
		if err != nil {
			t.Fatal(err)
		}
		fd = next
		rel.WriteString("/" + name)
	}
	defer unix.Close(fd)
	f, err := unix.Openat(fd, "bottom", unix.O_WRONLY|unix.O_CREAT, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(f)
	if _, err := unix.Write(f, []byte(content)); err != nil {
		t.Fatal(err)
	}
	return rel.String() + "/bottom"
}

// TestDeepTree is the bomb of issue 13 (item 8): a container nests 300
// directories of 200-byte names (a 60 KB path), which made diff, commit,
// clone and rebase fail with "file name too long". All four must work and
// see the file at the bottom.
func TestDeepTree(t *testing.T) {
	testtree.RequireRoot(t)
	e := withContainer(t, map[string]string{"f": "x"})
	e.publish("t2", writeTree(t, map[string]string{"f": "y"}))
	bottom := deepTree(t, e.m.UpperDir("c"), 300, "deep content")
	if len(bottom) < 60000 {
		t.Fatalf("path of %d bytes", len(bottom))
	}
	hasBottom := func(what, name string) {
		t.Helper()
		ch, err := e.m.Diff(name)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		for _, c := range ch {
			if c.Path == bottom && c.Size == int64(len("deep content")) {
				return
			}
		}
		t.Errorf("%s: diff of %s has %d entries, not the bottom file", what, name, len(ch))
	}
	hasBottom("diff", "c")

	start := time.Now()
	tpl := e.commit("c", "deep")
	t.Logf("commit of 300 levels: %v", time.Since(start))
	m, err := e.st.Layers.ReadLayer(tpl.Layers[len(tpl.Layers)-1])
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, en := range m.Entries {
		found = found || en.Path == bottom && en.Digest != ""
	}
	if !found {
		t.Error("the committed layer lacks the bottom file")
	}

	if _, err := e.m.Clone("c", "c2"); err != nil {
		t.Fatalf("clone: %v", err)
	}
	hasBottom("clone", "c2")

	if _, err := e.m.Rebase("c", "t2"); err != nil {
		t.Fatalf("rebase: %v", err)
	}
	hasBottom("rebase", "c")
	if err := e.m.Remove("c2", false); err != nil {
		t.Fatal(err)
	}
}
