package runtime

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestMemoryLimitKills(t *testing.T) {
	// The shell keeps 128 MiB of command output in memory: killed by the
	// OOM killer at 32 MiB.
	r := sh(t, `x=$(head -c 128m /dev/zero | tr '\0' a); echo survived ${#x}`, func(s *Spec) {
		s.CgroupName = testCgroupName()
		s.Limits.Memory = 32 << 20
	})
	if r.code != 137 || strings.Contains(r.stdout, "survived") {
		t.Fatalf("want exit 137 (OOM kill), got %+v", r)
	}
	// The same without a limit succeeds.
	r = sh(t, `x=$(head -c 128m /dev/zero | tr '\0' a); echo survived ${#x}`, func(s *Spec) {
		s.CgroupName = testCgroupName()
	})
	if r.code != 0 || r.stdout != "survived 134217728\n" {
		t.Fatalf("without a limit: %+v", r)
	}
}

// startTest starts a detached container in a fresh overlay and stops it at
// cleanup.
func startTest(t *testing.T, spec Spec) (string, int) {
	t.Helper()
	if spec.Rootfs == "" {
		spec.Rootfs = overlayRoot(t)
	}
	if spec.StateDir == "" {
		spec.StateDir = testStateDir(t)
	}
	pid, err := Start(spec)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := Stop(spec.StateDir, 0); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return spec.StateDir, pid
}

// testStateDir returns a container state directory in a temporary
// directory of its own, which is also its supervisor's (see
// Spec.supervisorDir). At cleanup, before the directory is removed, it
// waits for that supervisor to exit: one whose last container has ended
// opens its lock file again as it exits, which could put an entry back
// into the directory while the test's cleanup removes it.
func testStateDir(t *testing.T) string {
	t.Helper()
	parent := t.TempDir()
	t.Cleanup(func() {
		sock := filepath.Join(parent, supervisorSocket)
		for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
			if _, err := os.Lstat(sock); errors.Is(err, fs.ErrNotExist) {
				return
			}
		}
		t.Logf("the supervisor in %s is still running", parent)
	})
	return filepath.Join(parent, "state")
}

// waitFor polls cond until it holds; it never gives up on time alone (the
// test binary's -timeout is the bound), since tests must not fail on time.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	start := time.Now()
	warned := false
	for !cond() {
		if !warned && time.Since(start) > 30*time.Second {
			t.Logf("still waiting for %s", what)
			warned = true
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func readCgroupInt(t *testing.T, path string) int64 {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// containerCgroup returns the cgroups of the running container whose state
// directory is dir.
func containerCgroup(t *testing.T, dir string) *cgroup {
	t.Helper()
	st, err := LoadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	cg, err := openCgroup(cgroupRoot, st.Spec.CgroupName, st.Spec.Boot)
	if err != nil {
		t.Fatal(err)
	}
	return cg
}

func TestPidsLimitStopsForkBomb(t *testing.T) {
	const max = 24
	dir, _ := startTest(t, Spec{CgroupName: testCgroupName(), Limits: Limits{Pids: max},
		Args: []string{"/bin/sh", "-c", `
			bomb() { bomb & bomb & wait; }
			(bomb) 2>/dev/null &
			exec sleep 1000`}})
	cg := containerCgroup(t, dir)
	events := filepath.Join(cg.dirs["pids"], "pids.events")
	// pids.events counts the forks the limit refused: wait for the first.
	waitFor(t, "the fork bomb to hit the limit", func() bool {
		ev, err := os.ReadFile(events)
		return err == nil && strings.HasPrefix(string(ev), "max ") && !strings.HasPrefix(string(ev), "max 0")
	})
	for i := 0; i < 50; i++ {
		if n := readCgroupInt(t, filepath.Join(cg.dirs["pids"], "pids.current")); n > max {
			t.Fatalf("pids.current = %d > limit %d", n, max)
		}
		time.Sleep(2 * time.Millisecond)
	}
	ev, _ := os.ReadFile(events)
	t.Logf("pids.events: %s", strings.TrimSpace(string(ev)))
}

func TestCPULimit(t *testing.T) {
	dir, _ := startTest(t, Spec{CgroupName: testCgroupName(), Limits: Limits{CPUs: 0.5},
		Args: []string{"/bin/sh", "-c", "while :; do :; done & while :; do :; done"}})
	cg := containerCgroup(t, dir)
	// Two busy loops would use two CPUs unbounded; the quota holds them
	// to half of one. Throttling is enforced by the kernel, so only the
	// upper bound is checked (a loaded machine can only lower usage).
	u0, err := cg.cpuUsage()
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	time.Sleep(2 * time.Second)
	u1, _ := cg.cpuUsage()
	wall := time.Since(t0)
	ratio := float64(u1-u0) / float64(wall)
	t.Logf("cpu usage %.2f CPUs over %v", ratio, wall.Round(time.Millisecond))
	if ratio > 0.75 {
		t.Fatalf("usage %.2f CPUs exceeds the 0.5 CPU limit", ratio)
	}
	// The loops being held back shows in the throttling count (v1
	// nr_throttled, v2 nr_throttled in cpu.stat alike).
	stat, err := os.ReadFile(filepath.Join(cg.dirs["cpu"], "cpu.stat"))
	if err != nil {
		t.Fatal(err)
	}
	throttled := ""
	for _, l := range strings.Split(string(stat), "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[0] == "nr_throttled" {
			throttled = f[1]
		}
	}
	t.Logf("nr_throttled %s", throttled)
	// A machine too busy to give the loops half a CPU may never throttle
	// them: only a usage at the quota must show throttling.
	if ratio >= 0.45 && (throttled == "" || throttled == "0") {
		t.Fatalf("usage %.2f CPUs with no throttling", ratio)
	}
}
