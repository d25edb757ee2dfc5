package flock

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openTwice opens one file twice: two open file descriptions, which
// flock(2) treats as two holders.
func openTwice(t *testing.T) (a, b int) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "lock")
	var fds [2]int
	for i := range fds {
		f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		fds[i] = int(f.Fd())
	}
	return fds[0], fds[1]
}

// An exclusive lock waits for the holder to release it, and shared locks
// are held together.
func TestLockWaitsForHolder(t *testing.T) {
	a, b := openTwice(t)
	if err := Lock(a, unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	got := make(chan error)
	go func() { got <- Lock(b, unix.LOCK_EX) }()
	select {
	case err := <-got:
		t.Fatalf("took a held lock (err %v)", err)
	case <-time.After(100 * time.Millisecond):
	}
	if err := unix.Flock(a, unix.LOCK_UN); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatalf("after the holder released it: %v", err)
	}
	if err := unix.Flock(b, unix.LOCK_UN); err != nil {
		t.Fatal(err)
	}
	if err := Lock(a, unix.LOCK_SH); err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(b, unix.LOCK_SH|unix.LOCK_NB); err != nil {
		t.Errorf("a second shared lock: %v, want it taken at once", err)
	}
}

// A descriptor that is not open is an error, not a wait.
func TestLockBadDescriptor(t *testing.T) {
	if err := Lock(-1, unix.LOCK_EX); err != unix.EBADF {
		t.Errorf("Lock(-1): %v, want EBADF", err)
	}
}
