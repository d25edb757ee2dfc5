package testtree

import (
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Swap is the container's side of a race against a host tool: until the
// returned stop is called, it exchanges each pair of paths (renameat2
// RENAME_EXCHANGE) over and over, a file or directory with a symbolic link
// to a host path. stop waits for the last exchange to end.
func Swap(pairs ...[2]string) (stop func()) {
	var done atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !done.Load() {
			for _, p := range pairs {
				unix.Renameat2(unix.AT_FDCWD, p[0], unix.AT_FDCWD, p[1], unix.RENAME_EXCHANGE)
			}
		}
	}()
	return func() {
		done.Store(true)
		wg.Wait()
	}
}
