package container_test

import (
	"os"
	"testing"

	"github.com/acetate/acetate/fs/fuse"
)

// TestMain lets the fuse driver re-execute this test binary as its server,
// and the containment tests as an attacking container (swapper).
func TestMain(m *testing.M) {
	fuse.ServeIfRequested()
	swapperIfRequested()
	os.Exit(m.Run())
}
