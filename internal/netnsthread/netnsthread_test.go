package netnsthread_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/acetate/acetate/internal/netnsthread"
	"github.com/acetate/acetate/internal/testtree"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) {
	testtree.ReexecInNetns()
	os.Exit(m.Run())
}

// f runs in the namespace joined, and once Do returns no thread of the
// process is left there (one left there, the main thread's once, kept
// the namespace as long as the process).
func TestDoComesBack(t *testing.T) {
	testtree.RequireNetns(t)
	path := testtree.NewNetns(t, t.TempDir(), "other")
	var target unix.Stat_t
	if err := unix.Stat(path, &target); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		var inside unix.Stat_t
		err := netnsthread.Do(netnsthread.Join(path), func() error {
			return unix.Stat("/proc/thread-self/ns/net", &inside)
		})
		if err != nil {
			t.Fatal(err)
		}
		if inside.Ino != target.Ino {
			t.Fatalf("f ran in namespace %d, want %d", inside.Ino, target.Ino)
		}
		if left := testtree.ThreadsIn(t, path); len(left) != 0 {
			t.Fatalf("threads %v left in the namespace", left)
		}
	}
}

// An enter that fails is Do's error, and f does not run.
func TestDoEnterFails(t *testing.T) {
	ran := false
	err := netnsthread.Do(netnsthread.Join(filepath.Join(t.TempDir(), "none")), func() error { ran = true; return nil })
	if !errors.Is(err, os.ErrNotExist) || ran {
		t.Errorf("Do with a missing namespace: %v, f ran: %v", err, ran)
	}
}
