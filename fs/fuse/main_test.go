package fuse_test

import (
	"os"
	"testing"

	"github.com/acetate/acetate/fs/fuse"
)

// TestMain lets the test binary serve mounts: the driver re-executes it.
func TestMain(m *testing.M) {
	fuse.ServeIfRequested()
	code := m.Run()
	cleanupBench()
	os.Exit(code)
}
