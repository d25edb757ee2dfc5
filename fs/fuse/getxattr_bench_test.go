package fuse_test

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/acetate/acetate/fs/fuse"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// One FUSE request: a getxattr of an xattr the file lacks, which the
// kernel never caches (bench's "getxattr calls" row), on each target and
// through a server running in this process ("in-process"), where
// -benchmem counts the server's allocations as well as the caller's two
// (the path and the name). A run falls into one of two modes, whichever
// the server: the server's thread woken on the caller's CPU (fuse-overlayfs
// 5.0 µs, fuse-noplus 9.7 µs in one run of 2026-12-01) or on the other,
// idle one (18-32 µs, every peer); see bench/RESULTS.md, "FUSE requests".
// In-process, 15 allocations a request, all but the caller's in go-fuse's
// device loop (its RawConn closures and pooled buffers), none in
// acetate's handler.
func BenchmarkGetxattr(b *testing.B) {
	setupBench(b)
	targets := slices.Concat(benchTargets, []benchTarget{{"in-process", mountInProcess}})
	for _, tg := range targets {
		b.Run(tg.name, func(b *testing.B) {
			p := filepath.Join(tg.mount(b, benchData.rootfs), benchData.files[0])
			buf := make([]byte, 64)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := unix.Lgetxattr(p, "user.acetate-bench.none", buf); err != unix.ENODATA {
					b.Fatalf("getxattr %s: %v, want ENODATA", p, err)
				}
			}
		})
	}
}

// mountInProcess serves a union over lower (published in the store) from
// this process.
func mountInProcess(b *testing.B, lower string) string {
	upper, work, mnt := unionDirs(b)
	l, err := fuse.NewStoreLower(benchData.store, []digest.Digest{benchData.layers[lower]})
	if err != nil {
		b.Fatal(err)
	}
	srv, err := fuse.Serve(mnt, l, upper, work, fuse.ServeOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { unmountOrDetach(b, mnt, func(string) error { return srv.Unmount() }) })
	return mnt
}
