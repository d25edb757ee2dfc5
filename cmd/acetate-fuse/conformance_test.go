package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/acetate/acetate/fs/fstest"
)

// The conformance table on a plain directory (the reference), kernel
// overlayfs and acetate-fuse over the fixture as a plain lower directory,
// and acetate-fuse over the fixture split into two layers; each union's
// upper directory is also read under the others.
func TestConformance(t *testing.T) {
	fstest.Run(t, fstest.PlainDir(), fstest.KernelOverlay(),
		fstest.Target{
			Name: "acetate-fuse", Upper: true,
			Mount: func(t *testing.T, e *fstest.Env) string {
				return mountAcetate(t, fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", e.Fixture, e.Upper, e.Work))
			},
		},
		fstest.Target{
			Name: "acetate-fuse-2layers", Upper: true,
			Mount: func(t *testing.T, e *fstest.Env) string {
				top := splitLayer(t, e.Fixture, "tree", "etc")
				return mountAcetate(t, fmt.Sprintf("lowerdir=%s:%s,upperdir=%s,workdir=%s", top, e.Fixture, e.Upper, e.Work))
			},
		})
}

// splitLayer makes a layer to stack on fixture that holds exact copies of
// its subtrees dirs (which have no hardlinks out of them), so that the
// union shows the fixture's tree with those parts from the top layer. (The
// union's root shows the upper directory's attributes, not the layers'.)
func splitLayer(t *testing.T, fixture string, dirs ...string) string {
	t.Helper()
	top := filepath.Join(t.TempDir(), "top")
	if err := os.Mkdir(top, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if out, err := exec.Command("cp", "-a", filepath.Join(fixture, d), top).CombinedOutput(); err != nil {
			t.Fatalf("cp -a %s: %v: %s", d, err, out)
		}
	}
	return top
}
