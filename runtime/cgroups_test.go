package runtime

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeTree makes files under root with the given contents.
func fakeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

// The v2 code path, on a plain directory standing for /sys/fs/cgroup: the
// writes it makes are checked, not their effect.
func TestCgroupV2FakeTree(t *testing.T) {
	root := t.TempDir()
	fakeTree(t, root, map[string]string{
		"cgroup.controllers":     "cpuset cpu io memory hugetlb pids rdma misc\n",
		"cgroup.subtree_control": "",
	})
	// A fake directory tree has no kernel to create the interface files
	// of a new cgroup: precreate the optional one the code looks for.
	fakeTree(t, root, map[string]string{"acetate/web/memory.swap.max": "max"})
	v2, _, err := detectCgroups(root)
	if err != nil || !v2 {
		t.Fatalf("detect: v2=%v, %v", v2, err)
	}
	cg, err := createCgroup(root, "acetate/web", Limits{Memory: 64 << 20, Pids: 100, CPUs: 1.5}, false)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "acetate/web")
	for file, want := range map[string]string{
		"cgroup.subtree_control":         "+memory +pids +cpu",
		"acetate/cgroup.subtree_control": "+memory +pids +cpu",
		"acetate/web/memory.max":         "67108864",
		"acetate/web/memory.swap.max":    "0",
		"acetate/web/pids.max":           "100",
		"acetate/web/cpu.max":            "150000 100000",
	} {
		if got := readFile(t, filepath.Join(root, file)); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
	if d := cg.uniqueDirs(); len(d) != 1 || d[0] != dir {
		t.Errorf("dirs %v, want [%s]", d, dir)
	}
	if err := cg.join(1234); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(dir, "cgroup.procs")); got != "1234" {
		t.Errorf("cgroup.procs = %q", got)
	}
	fakeTree(t, root, map[string]string{"acetate/web/cpu.stat": "usage_usec 2500000\nuser_usec 1\n"})
	if u, err := cg.cpuUsage(); err != nil || u != 2500*time.Millisecond {
		t.Errorf("cpuUsage = %v, %v", u, err)
	}
}

// The v1 code path on a fake tree, as on a host without a hybrid layout.
func TestCgroupV1FakeTree(t *testing.T) {
	root := t.TempDir()
	fakeTree(t, root, map[string]string{
		"memory/cgroup.procs": "", "pids/cgroup.procs": "", "cpu/cgroup.procs": "", "cpuacct/cgroup.procs": "",
		"unified/cgroup.controllers":            "",
		"memory/c1/memory.memsw.limit_in_bytes": "",
	})
	cg, err := createCgroup(root, "c1", Limits{Memory: 1 << 30, Pids: 7, CPUs: 0.5}, false)
	if err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{
		"memory/c1/memory.limit_in_bytes":       "1073741824",
		"memory/c1/memory.memsw.limit_in_bytes": "1073741824",
		"pids/c1/pids.max":                      "7",
		"cpu/c1/cpu.cfs_period_us":              "100000",
		"cpu/c1/cpu.cfs_quota_us":               "50000",
	} {
		if got := readFile(t, filepath.Join(root, file)); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
	if len(cg.uniqueDirs()) != 4 {
		t.Errorf("dirs %v", cg.uniqueDirs())
	}
}

func TestCgroupDetectNone(t *testing.T) {
	if _, _, err := detectCgroups(t.TempDir()); err == nil {
		t.Fatal("want an error for a directory without cgroups")
	}
}

// The v2 code path against a real kernel: on a hybrid host the v2 tree at
// /sys/fs/cgroup/unified has no memory, pids or cpu controller (they are
// bound to v1), but creating, joining, the cgroup namespace, CPU usage and
// removal all work there, and a limit fails clearly.
func TestCgroupV2RealUnified(t *testing.T) {
	root := overlayRoot(t)
	unified := useUnifiedRoot(t)
	name := testCgroupName()
	r := runSpec(t, Spec{Rootfs: root, CgroupName: name,
		Args: []string{"/bin/sh", "-c", "grep '^0::' /proc/self/cgroup; i=0; while [ $i -lt 2000 ]; do i=$((i+1)); done"}})
	if r.code != 0 || r.stdout != "0::/\n" {
		t.Fatalf("got %+v, want the v2 cgroup as the namespace root", r)
	}
	if _, err := os.Stat(filepath.Join(unified, name)); !os.IsNotExist(err) {
		t.Fatalf("cgroup %s left behind: %v", name, err)
	}
	_, err := Run(context.Background(), Spec{Rootfs: root, CgroupName: testCgroupName(), Limits: Limits{Memory: 64 << 20},
		Args: []string{"true"}})
	if err == nil || !strings.Contains(err.Error(), "memory.max") {
		t.Fatalf("memory limit without a memory controller: %v", err)
	}
}
