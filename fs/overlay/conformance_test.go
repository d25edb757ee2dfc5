package overlay_test

import (
	"testing"

	"github.com/acetate/acetate/fs/fstest"
	"github.com/acetate/acetate/fs/overlay"
)

// TestConformance runs the drivers' conformance table on the overlay
// driver, against a plain directory and plain kernel overlayfs. The
// driver is kernel overlayfs with index=off, so it shares that target's
// known deviations (a copy-up breaks a template hardlink group).
func TestConformance(t *testing.T) {
	kernel := fstest.KernelOverlay()
	driver := fstest.DriverTarget(overlay.Driver{})
	driver.Deviations = kernel.Deviations
	fstest.Run(t, fstest.PlainDir(), kernel, driver)
}
