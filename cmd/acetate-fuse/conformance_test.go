package main

import (
	"fmt"
	"testing"

	"github.com/acetate/acetate/fs/fstest"
)

// The conformance table on a plain directory (the reference), kernel
// overlayfs and acetate-fuse over the fixture as a plain lower directory;
// each union's upper directory is also read under the other.
func TestConformance(t *testing.T) {
	fstest.Run(t, fstest.PlainDir(), fstest.KernelOverlay(), fstest.Target{
		Name: "acetate-fuse", Upper: true,
		Deviations: map[string]string{
			"write/while-open-read-only": "with passthrough, a lower file open read-only cannot be opened for writing (ETXTBSY): the kernel binds one backing file per inode",
		},
		Mount: func(t *testing.T, e *fstest.Env) string {
			return mountAcetate(t, fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", e.Fixture, e.Upper, e.Work))
		},
	})
}
