package container_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/acetate/acetate/internal/testtree"
)

// Listing reads the disk a container's differences use from the figure
// kept at its last mount or unmount, walking no upper directory: a write
// while mounted shows once the container is unmounted (or when measured),
// and a reset, which swaps in a new upper directory, is not shown the old
// figure.
func TestDiffBytesKept(t *testing.T) {
	testtree.RequireRoot(t)
	e := withContainer(t, map[string]string{"etc/hostname": "t\n"})
	empty, exact := e.m.DiffBytes("c", false)
	if !exact || empty <= 0 || empty > 64<<10 {
		t.Fatalf("a new container: %d bytes (measured %v), want the few kB of an empty upper, measured", empty, exact)
	}
	mnt := e.mountWith("c", "overlay")
	if err := os.WriteFile(filepath.Join(mnt, "data"), make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	if kept, exact := e.m.DiffBytes("c", false); exact || kept != empty {
		t.Errorf("mounted, after a 1 MiB write: %d bytes (measured %v), want the figure kept at mount, %d", kept, exact, empty)
	}
	if now, _ := e.m.DiffBytes("c", true); now < 1<<20 {
		t.Errorf("measured while mounted: %d bytes, want 1 MiB or more", now)
	}
	e.unmount("c")
	kept, exact := e.m.DiffBytes("c", false)
	if exact || kept < 1<<20 {
		t.Errorf("after unmount: %d bytes (measured %v), want 1 MiB or more, kept", kept, exact)
	}
	if err := e.m.Reset("c"); err != nil {
		t.Fatal(err)
	}
	if after, exact := e.m.DiffBytes("c", false); !exact || after >= 1<<20 {
		t.Errorf("after reset: %d bytes (measured %v), want the empty upper, measured", after, exact)
	}
}
