package beneath

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// MkdirAllInRoot makes missing directories inside the root, however the
// container's links point (absolute, ../ out of the root): the host's
// directory they name stays untouched. A dangling link is not followed to
// make its target: that fails.
func TestMkdirAllInRoot(t *testing.T) {
	host := t.TempDir()
	root := t.TempDir()
	if err := os.Symlink(host, filepath.Join(root, "abs")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(strings.Repeat("../", 10)+host[1:], filepath.Join(root, "up")); err != nil {
		t.Fatal(err)
	}
	// The links' targets, as the container sees them.
	if err := os.MkdirAll(filepath.Join(root, host), 0o755); err != nil {
		t.Fatal(err)
	}
	rootfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(rootfd)
	for _, p := range []string{"/abs/a/b", "up/c", "/../../d/e"} {
		fd, err := MkdirAllInRoot(rootfd, p, 0o755, nil)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		unix.Close(fd)
	}
	if ents, _ := os.ReadDir(host); len(ents) != 0 {
		t.Fatalf("made %v in the host's directory", ents)
	}
	for _, p := range []string{host + "/a/b", host + "/c", "d/e"} {
		if fi, err := os.Stat(filepath.Join(root, p)); err != nil || !fi.IsDir() {
			t.Errorf("%s not made inside the root: %v", p, err)
		}
	}
	os.Symlink("/nowhere/x", filepath.Join(root, "dangling"))
	if _, err := MkdirAllInRoot(rootfd, "/dangling/y", 0o755, nil); err == nil {
		t.Error("a dangling link made its target")
	}
	if _, err := os.Stat(filepath.Join(root, "nowhere")); err == nil {
		t.Error("a dangling link's target made")
	}
}
