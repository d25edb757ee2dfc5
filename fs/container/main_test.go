package container_test

import (
	"os"
	"testing"

	"github.com/acetate/acetate/fs/fuse"
)

// TestMain lets the fuse driver re-execute this test binary as its server.
func TestMain(m *testing.M) {
	fuse.ServeIfRequested()
	os.Exit(m.Run())
}
