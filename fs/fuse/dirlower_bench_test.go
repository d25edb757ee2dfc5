package fuse_test

import (
	"testing"

	"github.com/acetate/acetate/fs/fuse"
)

// The benchmarks also run acetate-fuse's union: the same server over the
// plain lower directory (DirLower) instead of its store layer, served in
// the benchmark's process.
func init() {
	benchTargets = append(benchTargets, benchTarget{"acetate-fuse", mountDirLower})
}

func mountDirLower(b *testing.B, lower string) string {
	upper, work, mnt := unionDirs(b)
	l, err := fuse.NewDirLower([]string{lower})
	if err != nil {
		b.Fatal(err)
	}
	server, err := fuse.Serve(mnt, l, upper, work, fuse.ServeOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		unmountOrDetach(b, mnt, func(string) error { return server.Unmount() })
		server.Wait()
		l.Close()
	})
	return mnt
}
