package runtime

import (
	"path"
	"slices"
	"testing"

	"github.com/acetate/acetate/fs/upper"
)

// The mount points the launcher creates in a container's root (mkdir
// targets directly below /) are the ones diff and commit leave out:
// fs/upper.LauncherDirs. fs/upper cannot import the runtime (the layering
// is cmd → runtime → fs), and the mount table is more than a list of
// directories, so this test keeps the two in step.
func TestMountDirsAreLauncherDirs(t *testing.T) {
	var made []string
	for _, m := range append(containerMounts(), devMounts()...) {
		if m.mkdir && path.Dir(m.target) == "/" {
			made = append(made, m.target)
		}
	}
	slices.Sort(made)
	want := slices.Sorted(slices.Values(upper.LauncherDirs))
	if !slices.Equal(made, want) {
		t.Errorf("the launcher makes mount points %q in a container's root; fs/upper.LauncherDirs is %q", made, want)
	}
}
