package fuse_test

import (
	"path/filepath"
	"testing"

	"github.com/acetate/acetate/fs/fuse"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// One FUSE request (a getxattr of an xattr the file lacks, which the
// kernel never caches) through a server running in this process, so that
// -benchmem counts the server's allocations as well as the caller's two
// (the path and the name). On 2026-12-01: 15 allocations a request, all
// but the caller's in go-fuse's device loop (its RawConn closures and
// pooled buffers), none in acetate's handler.
func BenchmarkGetxattrInProcess(b *testing.B) {
	setupBench(b)
	upper, work, mnt := unionDirs(b)
	lower, err := fuse.NewStoreLower(benchData.store, []digest.Digest{benchData.layers[benchData.rootfs]})
	if err != nil {
		b.Fatal(err)
	}
	srv, err := fuse.Serve(mnt, lower, upper, work, fuse.ServeOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { unmountOrDetach(b, mnt, func(string) error { return srv.Unmount() }) })
	p := filepath.Join(mnt, benchData.files[0])
	buf := make([]byte, 64)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := unix.Lgetxattr(p, "user.acetate-bench.none", buf); err != unix.ENODATA {
			b.Fatalf("getxattr %s: %v, want ENODATA", p, err)
		}
	}
}
