package bench_test

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/acetate/acetate/bench"
)

// The boot scenario, with one boot of each peer and one container at once,
// reports sane boot and stop times and idle memory for acetate (both
// drivers) and for every peer installed here (one that is not is skipped,
// saying so), with a Pss for each process of one acetate container, and
// leaves nothing of its own behind: no mount, cgroup, process or LXC lock.
func TestBootScenario(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("bench needs root")
	}
	if _, err := os.Lstat(filepath.Join(bench.SystemdTree, "sbin/init")); err != nil {
		t.Skipf("no systemd tree to boot (%v); .ci/setup makes it", err)
	}
	// A short work directory: a container's console socket is bound in its
	// store, and a socket path has at most 107 bytes.
	work, err := os.MkdirTemp("", "ab")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(work)
	r, err := bench.Run(context.Background(), bench.Options{Quick: true, Scenarios: []string{"boot"},
		Boots: 1, BootCounts: []int{1}, Out: t.TempDir(), Work: work})
	if err != nil {
		t.Fatal(err)
	}
	peers := map[string]string{"acetate overlay": "", "acetate fuse": "", "systemd-nspawn -b": "systemd-nspawn", "lxc-start": "lxc-start"}
	cases := map[string][2]float64{ // sane bounds
		"start to is-system-running: running (systemd)": {0.01, 60},
		"stop until its end is recorded (systemd)":      {0.001, 60},
		"idle Pss per container, 1 booted at once":      {1 << 20, 512 << 20},
	}
	for tool, cmd := range peers {
		for cas, bounds := range cases {
			i := slices.IndexFunc(r.Figures, func(f bench.Figure) bool { return f.Case == cas && f.Tool == tool })
			if i < 0 {
				t.Errorf("%s: %s is missing", tool, cas)
				continue
			}
			f := r.Figures[i]
			switch {
			case f.Status == bench.Skipped && cmd != "" && strings.Contains(f.Reason, "not installed"):
				if _, err := exec.LookPath(cmd); err == nil {
					t.Errorf("%s: %s skipped as not installed, but %s is: %s", tool, cas, cmd, f.Reason)
				}
			case f.Status != bench.Measured:
				t.Errorf("%s: %s not measured: %s", tool, cas, f.Reason)
			case len(f.Samples) != 1 || f.Median < bounds[0] || f.Median > bounds[1]:
				t.Errorf("%s: %s: %v %s, want one sample within %v", tool, cas, f.Samples, f.Unit, bounds)
			default:
				t.Logf("%s: %s: %.3g %s", tool, cas, f.Median, f.Unit)
			}
		}
	}
	var procs []string
	var sum float64
	for _, f := range r.Figures {
		if f.Case == "idle Pss by process, 1 container: acetate overlay" {
			procs = append(procs, f.Tool)
			sum += f.Median
		}
	}
	for _, p := range []string{"process: acetate supervisor (the store's)", "process: systemd", "process: systemd-journald"} {
		if !slices.Contains(procs, p) {
			t.Errorf("acetate overlay's processes %v lack %s", procs, p)
		}
	}
	if i := slices.IndexFunc(r.Figures, func(f bench.Figure) bool {
		return f.Tool == "acetate overlay" && f.Case == "idle Pss per container, 1 booted at once"
	}); i >= 0 && r.Figures[i].Median != sum {
		t.Errorf("acetate overlay: Pss per container %v is not the sum of its processes' %v", r.Figures[i].Median, sum)
	}
	if len(r.Notes) < 2 {
		t.Errorf("notes: %v, want the boot and the memory goal judged", r.Notes)
	}
	requireNothingLeft(t, work)
}

// requireNothingLeft fails if anything the bench run in this process made
// for the boot scenario is still there: a mount under work, a cgroup or a
// process in one, an LXC lock directory.
func requireNothingLeft(t *testing.T, work string) {
	t.Helper()
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mounts), work) {
		t.Errorf("mounts left under %s", work)
	}
	// The names the scenario gives to cgroups: acetate's containers
	// (acetate/bPID-...), nspawn's and LXC's (...acetate-bench-PID-...).
	ours := []string{fmt.Sprintf("b%d-", os.Getpid()), fmt.Sprintf("acetate-bench-%d-", os.Getpid())}
	isOurs := func(s string) bool {
		return slices.ContainsFunc(ours, func(o string) bool { return strings.Contains(s, o) })
	}
	filepath.WalkDir("/sys/fs/cgroup", func(p string, e fs.DirEntry, err error) error {
		if err != nil || !e.IsDir() {
			return nil
		}
		if isOurs(e.Name()) {
			t.Errorf("cgroup left: %s", p)
			return fs.SkipDir
		}
		if strings.Count(p, "/") > 5 {
			return fs.SkipDir
		}
		return nil
	})
	procs, _ := filepath.Glob("/proc/[0-9]*/cgroup")
	for _, p := range procs {
		if b, err := os.ReadFile(p); err == nil && isOurs(string(b)) {
			t.Errorf("process left: %s: %s", p, b)
		}
	}
	locks, _ := filepath.Glob(filepath.Join("/run/lxc/lock", work, "*"))
	if len(locks) > 0 {
		t.Errorf("LXC locks left: %v", locks)
	}
}
