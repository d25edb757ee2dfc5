package overlay_test

import (
	"testing"

	"github.com/acetate/acetate/fs/fstest"
	"github.com/acetate/acetate/fs/overlay"
)

// TestConformance runs the drivers' conformance table on the overlay
// driver, against a plain directory and plain kernel overlayfs.
func TestConformance(t *testing.T) {
	fstest.Run(t, fstest.PlainDir(), fstest.KernelOverlay(), fstest.DriverTarget(overlay.Driver{}))
}
