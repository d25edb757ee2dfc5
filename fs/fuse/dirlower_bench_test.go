package fuse_test

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// The benchmarks also run acetate-fuse, the program, over the plain lower
// directory, as the peers run.
func init() {
	benchTargets = append(benchTargets, benchTarget{"acetate-fuse", mountAcetateFuse})
}

// acetateFuse is the acetate-fuse binary, built once per run into the
// benchmarks' directory.
var acetateFuse struct {
	once sync.Once
	path string
	err  error
}

func mountAcetateFuse(b *testing.B, lower string) string {
	acetateFuse.once.Do(func() {
		acetateFuse.path = filepath.Join(benchData.dir, "acetate-fuse")
		out, err := exec.Command("go", "build", "-o", acetateFuse.path, "github.com/acetate/acetate/cmd/acetate-fuse").CombinedOutput()
		if err != nil {
			acetateFuse.err = fmt.Errorf("go build: %w: %s", err, out)
		}
	})
	if acetateFuse.err != nil {
		b.Fatal(acetateFuse.err)
	}
	upper, work, mnt := unionDirs(b)
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work)
	if out, err := exec.Command(acetateFuse.path, "-o", opts, mnt).CombinedOutput(); err != nil {
		b.Fatalf("acetate-fuse: %v %s", err, out)
	}
	b.Cleanup(func() { unmountOrDetach(b, mnt, func(p string) error { return unix.Unmount(p, 0) }) })
	return mnt
}
