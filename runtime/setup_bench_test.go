package runtime

import (
	goruntime "runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkSetupRootfs measures the container's file system setup alone
// (private mounts, pivot_root, /proc, /sys, /dev, masks), each iteration on a
// thread of its own in a mount namespace of its own, discarded afterwards.
func BenchmarkSetupRootfs(b *testing.B) {
	root := overlayRoot(b)
	var total time.Duration
	best := time.Duration(1 << 62)
	for i := 0; i < b.N; i++ {
		errc := make(chan error, 1)
		go func() {
			goruntime.LockOSThread() // never unlocked: the thread dies with the goroutine
			if err := unix.Unshare(unix.CLONE_FS | unix.CLONE_NEWNS); err != nil {
				errc <- err
				return
			}
			t0 := time.Now()
			err := setupRootfs(&Spec{Rootfs: root})
			d := time.Since(t0)
			total += d
			best = min(best, d)
			errc <- err
		}()
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "setup-ns/op")
	b.ReportMetric(float64(best.Nanoseconds()), "min-setup-ns/op")
}
