package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestPauseResume freezes a container whose loop appends to a file: while
// paused the file stops growing, after Resume it grows again, and a paused
// container stops (Stop thaws it first, or its processes would never take
// the signal). On cgroup v1 (the host's freezer hierarchy) and on v2 (the
// hybrid host's unified tree, whose cgroup.freeze needs no controller).
func TestPauseResume(t *testing.T) {
	t.Run("v1", func(t *testing.T) {
		if _, v1, err := detectCgroups(cgroupRoot); err != nil || v1["freezer"] == "" {
			t.Skipf("no cgroup v1 freezer hierarchy under %s (%v)", cgroupRoot, err)
		}
		testPauseResume(t, func(t *testing.T, s Spec) { startTest(t, s) })
	})
	t.Run("v2", func(t *testing.T) {
		unified := "/sys/fs/cgroup/unified"
		if v2, _, err := detectCgroups(cgroupRoot); err == nil && v2 {
			unified = cgroupRoot
		} else if v2, _, err := detectCgroups(unified); err != nil || !v2 {
			t.Skipf("no cgroup v2 tree at %s: %v", unified, err)
		}
		saved := cgroupRoot
		cgroupRoot = unified
		t.Cleanup(func() { cgroupRoot = saved })
		testPauseResume(t, runInBackground)
	})
}

// runInBackground runs spec in the foreground of a goroutine, in this
// process, which alone sees a cgroupRoot the test changed (Start's supervisor
// is another process), and returns once the container runs.
func runInBackground(t *testing.T, spec Spec) {
	ended := make(chan error, 1)
	go func() {
		_, err := Run(context.Background(), spec)
		ended <- err
	}()
	waitFor(t, "the container to run", func() bool {
		st, err := LoadState(spec.StateDir)
		return err == nil && st.Running
	})
	t.Cleanup(func() {
		if err := Stop(spec.StateDir, 0); err != nil {
			t.Errorf("Stop: %v", err)
		}
		if err := <-ended; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

func testPauseResume(t *testing.T, run func(*testing.T, Spec)) {
	root := overlayRoot(t)
	counter := filepath.Join(root, "counter")
	dir := testStateDir(t)
	run(t, Spec{Rootfs: root, StateDir: dir, CgroupName: testCgroupName(),
		Args: []string{"/bin/sh", "-c", "while :; do echo x >> /counter; sleep 0.01; done"}})
	size := func() int64 {
		fi, err := os.Stat(counter)
		if err != nil {
			return 0
		}
		return fi.Size()
	}
	grows := func() bool {
		before := size()
		waitFor(t, "the counter to grow", func() bool { return size() > before })
		return true
	}
	grows()
	if p, err := Paused(dir); err != nil || p {
		t.Fatalf("running container: Paused = %v, %v", p, err)
	}
	start := time.Now()
	if err := Pause(dir); err != nil {
		t.Fatal(err)
	}
	t.Logf("froze in %v", time.Since(start))
	if p, err := Paused(dir); err != nil || !p {
		t.Fatalf("paused container: Paused = %v, %v", p, err)
	}
	if err := Pause(dir); err != nil {
		t.Fatalf("pausing a paused container: %v", err)
	}
	frozen := size()
	time.Sleep(300 * time.Millisecond) // 30 turns of the loop, were it running
	if now := size(); now != frozen {
		t.Fatalf("paused container still writes: %d -> %d bytes", frozen, now)
	}
	if err := Resume(dir); err != nil {
		t.Fatal(err)
	}
	grows()
	if p, err := Paused(dir); err != nil || p {
		t.Fatalf("resumed container: Paused = %v, %v", p, err)
	}
	if err := Pause(dir); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- Stop(dir, time.Second) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Stop of a paused container: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Stop of a paused container hangs")
	}
	if err := Pause(dir); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Pause of a stopped container: %v, want ErrNotRunning", err)
	}
}

// TestPauseWithoutCgroup: a container started without a cgroup of its own
// cannot be paused, and says why.
func TestPauseWithoutCgroup(t *testing.T) {
	dir, _ := startTest(t, Spec{Args: []string{"sleep", "1000"}})
	if err := Pause(dir); !errors.Is(err, ErrFreezer) {
		t.Fatalf("Pause: %v, want ErrFreezer", err)
	}
	if p, err := Paused(dir); err != nil || p {
		t.Fatalf("Paused = %v, %v", p, err)
	}
}

// A container frozen by a process that died without thawing it (kill -9
// of a move in its last push) is thawed by the next ThawOrphaned; one whose
// freezer lives stays frozen.
func TestThawOrphaned(t *testing.T) {
	if _, err := os.Stat(filepath.Join(cgroupRoot, "freezer")); err != nil {
		t.Skipf("no cgroup v1 freezer hierarchy under %s", cgroupRoot)
	}
	dir, _ := startTest(t, Spec{CgroupName: testCgroupName(), Args: []string{"sleep", "1000"}})
	thaw, err := Freeze(dir)
	if err != nil {
		t.Fatal(err)
	}
	if thawed, err := ThawOrphaned(dir); err != nil || thawed {
		t.Fatalf("ThawOrphaned with its freezer alive: %v, %v", thawed, err)
	}
	if err := thaw(); err != nil {
		t.Fatal(err)
	}
	// The freezer: a process that has exited.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	if err := Pause(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, frozenByFile), []byte(fmt.Sprintf("%d 1", dead.Process.Pid)), 0o600); err != nil {
		t.Fatal(err)
	}
	if thawed, err := ThawOrphaned(dir); err != nil || !thawed {
		t.Fatalf("ThawOrphaned with its freezer dead: %v, %v", thawed, err)
	}
	if paused, err := Paused(dir); err != nil || paused {
		t.Errorf("still paused: %v, %v", paused, err)
	}
}
