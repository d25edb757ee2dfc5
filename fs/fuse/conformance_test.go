package fuse_test

import (
	"testing"

	"github.com/acetate/acetate/fs/fstest"
	"github.com/acetate/acetate/fs/fuse"
)

// The conformance table on a plain directory (the reference), kernel
// overlayfs and the fuse driver; every upper directory is also read under
// the other union.
func TestConformance(t *testing.T) {
	driver := fstest.DriverTarget(&fuse.Driver{})
	fstest.Run(t, fstest.PlainDir(), fstest.KernelOverlay(), driver)
}
