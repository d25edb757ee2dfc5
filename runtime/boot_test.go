package runtime

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acetate/acetate/internal/testtree"
)

// bootTree is a tree to boot, and what answers for its flavor.
type bootTree struct {
	name   string
	rootfs func(testing.TB) string
	// running is what the tree's "running" state check prints.
	running []string
	// ready is a shell test that the init can be talked to.
	ready string
}

var bootTrees = []bootTree{
	{"systemd", testtree.SystemdRootfs, []string{"systemctl", "is-system-running", "--wait"}, "test -S /run/systemd/private"},
	{"sysvinit", testtree.SysvinitRootfs, []string{"runlevel"}, "runlevel | grep -q ' 2$'"},
}

// TestBoot boots each tree's own init on an overlay of it, checks it comes
// up with its service answering, and stops it cleanly (exit 0) within its
// timeout, leaving no cgroup.
func TestBoot(t *testing.T) {
	for _, tree := range bootTrees {
		t.Run(tree.name, func(t *testing.T) {
			testtree.RequireRoot(t)
			root := overlayOn(t, tree.rootfs(t))
			spec := Spec{
				Rootfs: root, Boot: true, Hostname: "booted",
				CgroupName: testCgroupName(), StateDir: testStateDir(t),
			}
			if _, err := Start(spec); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				Stop(spec.StateDir, time.Second)
				if t.Failed() {
					log, _ := os.ReadFile(filepath.Join(spec.StateDir, logFile))
					t.Logf("console:\n%s", log)
				}
			})
			waitBooted(t, spec.StateDir, tree.ready)
			out := execOut(t, spec.StateDir, 60*time.Second, tree.running...)
			t.Logf("%s: %s", strings.Join(tree.running, " "), out)
			if tree.name == "systemd" && strings.TrimSpace(out) != "running" {
				failed := execOut(t, spec.StateDir, 10*time.Second, "systemctl", "--failed", "--no-legend")
				t.Errorf("system state %q, failed units:\n%s", out, failed)
			}
			if hosts := execOut(t, spec.StateDir, 10*time.Second, "cat", "/etc/hosts"); !strings.Contains(hosts, "127.0.1.1\tbooted\n") {
				t.Errorf("/etc/hosts does not name the container:\n%s", hosts)
			}
			// sysvinit is in runlevel 2 while its rc scripts still run.
			var page string
			for try := 0; try < 100 && !strings.Contains(page, testtree.ServiceAnswer); try++ {
				time.Sleep(time.Duration(try) * time.Millisecond)
				page = execOut(t, spec.StateDir, 10*time.Second, "busybox", "wget", "-qO-", "http://127.0.0.1/")
			}
			if !strings.Contains(page, testtree.ServiceAnswer) {
				t.Errorf("service answered %q", page)
			}
			begin := time.Now()
			if err := Stop(spec.StateDir, -1); err != nil {
				t.Fatal(err)
			}
			t.Logf("stopped in %v", time.Since(begin))
			if e := readExit(t, spec.StateDir); e.Code != 0 {
				log, _ := os.ReadFile(filepath.Join(spec.StateDir, logFile))
				t.Errorf("exit code %d, want 0 (a clean shutdown); log:\n%s", e.Code, log)
			}
		})
	}
}

// execOut runs args in the container and returns its output.
func execOut(t *testing.T, dir string, timeout time.Duration, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out bytes.Buffer
	if _, err := Exec(ctx, dir, args, ExecOptions{Stdout: &out, Stderr: &out}); err != nil {
		t.Fatalf("%v: %v (%s)", args, err, out.String())
	}
	return out.String()
}

// waitBooted waits (at most 30 s) until the container's init can be talked
// to (the shell test ready passes): systemctl needs systemd's private bus,
// made early in the boot.
func waitBooted(t *testing.T, dir, ready string) {
	t.Helper()
	for try := 0; try < 600; try++ {
		var out bytes.Buffer
		code, err := Exec(context.Background(), dir, []string{"sh", "-c", ready}, ExecOptions{Stdout: &out, Stderr: &out})
		if err == nil && code == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the init never came up")
}

// TestBootV2Hierarchy boots systemd the way a cgroup-v2-only host would
// have it: with the launcher's cgroup root pointed at this hybrid host's v2
// tree, the container's processes go in "payload" below its cgroup, which
// is the root of its cgroup namespace and of its /sys/fs/cgroup.
func TestBootV2Hierarchy(t *testing.T) {
	testtree.RequireRoot(t)
	lower := testtree.SystemdRootfs(t)
	unified := useUnifiedRoot(t)
	spec := Spec{Rootfs: overlayOn(t, lower), Boot: true, CgroupName: testCgroupName(), StateDir: t.TempDir()}
	runInBackground(t, spec) // in this process, which alone sees the changed cgroupRoot
	waitBooted(t, spec.StateDir, bootTrees[0].ready)
	if out := execOut(t, spec.StateDir, 60*time.Second, bootTrees[0].running...); strings.TrimSpace(out) != "running" {
		t.Errorf("system state %q", out)
	}
	if out := execOut(t, spec.StateDir, 10*time.Second, "grep", "^0::", "/proc/1/cgroup"); out != "0::/init.scope\n" {
		t.Errorf("init's v2 cgroup inside: %q, want 0::/init.scope", out)
	}
	if _, err := os.Stat(filepath.Join(unified, spec.CgroupName, "payload", "init.scope")); err != nil {
		t.Errorf("systemd's cgroups are not below payload: %v", err)
	}
	if err := Stop(spec.StateDir, -1); err != nil {
		t.Fatal(err)
	}
	if e := readExit(t, spec.StateDir); e.Code != 0 {
		t.Errorf("exit code %d, want 0", e.Code)
	}
	if _, err := os.Stat(filepath.Join(unified, spec.CgroupName)); !os.IsNotExist(err) {
		t.Errorf("cgroup left behind: %v", err)
	}
}

// A container with a hostname of its own and no network that sets one gets
// an /etc/hosts naming it (a read-only bind of its state's file over the
// root's, which stays as it was), as docker gives one.
func TestEtcHosts(t *testing.T) {
	root := overlayRoot(t)
	if err := os.WriteFile(filepath.Join(root, "etc/hosts"), []byte("10.0.0.1 template-host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runSpec(t, Spec{Rootfs: root, Hostname: "h1", StateDir: t.TempDir(), Args: []string{"cat", "/etc/hosts"}})
	if r.code != 0 || r.stdout != hostsFile("h1") {
		t.Errorf("/etc/hosts inside: %+v, want %q", r, hostsFile("h1"))
	}
	if data, _ := os.ReadFile(filepath.Join(root, "etc/hosts")); string(data) != "10.0.0.1 template-host\n" {
		t.Errorf("the root's /etc/hosts changed: %q", data)
	}
}
