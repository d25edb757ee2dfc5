package runtime

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acetate/acetate/internal/testtree"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) {
	InitMain()
	if len(os.Args) > 1 && os.Args[1] == "__probe" {
		os.Exit(probeMain(os.Args[2:]))
	}
	code := m.Run()
	removeTestCgroupParents()
	os.Exit(code)
}

// removeTestCgroupParents removes the parent cgroups the tests' containers
// were made in (see testCgroupName), in every hierarchy, once empty: the
// tests leave no cgroup behind.
func removeTestCgroupParents() {
	dirs, _ := filepath.Glob(filepath.Join(cgroupRoot, "*", testCgroupParent))
	for _, d := range append(dirs, filepath.Join(cgroupRoot, testCgroupParent)) {
		os.Remove(d) // rmdir: only an empty cgroup goes
	}
}

// testRootfs returns the read-only Debian rootfs the tests run on, or
// skips the test when there is none or it does not run as root.
func testRootfs(tb testing.TB) string {
	tb.Helper()
	testtree.RequireRoot(tb)
	return testtree.DebianRootfs(tb)
}

// overlayRoot mounts a kernel overlayfs with the test rootfs as its lower
// layer and a fresh upper directory, and returns the merged directory. The
// rootfs itself is never written. It is unmounted at cleanup.
func overlayRoot(tb testing.TB) string {
	tb.Helper()
	return overlayOn(tb, testRootfs(tb))
}

// overlayOn mounts a kernel overlayfs with lower as its lower layer, as
// overlayRoot does.
func overlayOn(tb testing.TB, lower string) string {
	tb.Helper()
	base := tb.TempDir()
	upper, work, merged := filepath.Join(base, "upper"), filepath.Join(base, "work"), filepath.Join(base, "merged")
	for _, d := range []string{upper, work, merged} {
		if err := os.Mkdir(d, 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work)
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		tb.Skipf("kernel overlayfs not usable here: %v", err)
	}
	tb.Cleanup(func() {
		if err := unix.Unmount(merged, 0); err != nil {
			unix.Unmount(merged, unix.MNT_DETACH)
		}
	})
	return merged
}

var cgroupSeq atomic.Int64

// testCgroupParent is the cgroup the tests' containers are made in.
const testCgroupParent = "acetate-test"

// testCgroupName returns a cgroup name unique to this test process.
func testCgroupName() string {
	return fmt.Sprintf("%s/%d-%d", testCgroupParent, os.Getpid(), cgroupSeq.Add(1))
}

// result is the outcome of a foreground run.
type result struct {
	code           int
	stdout, stderr string
}

// runSpec runs spec in the foreground with captured output.
func runSpec(t *testing.T, spec Spec) result {
	t.Helper()
	var out, errb bytes.Buffer
	spec.Stdout, spec.Stderr = &out, &errb
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	code, err := Run(ctx, spec)
	if err != nil {
		t.Fatalf("Run(%q): %v (stderr %q)", spec.Args, err, errb.String())
	}
	return result{code, out.String(), errb.String()}
}

// sh runs a shell script in a fresh container and returns the result.
func sh(t *testing.T, script string, mod ...func(*Spec)) result {
	t.Helper()
	spec := Spec{Rootfs: overlayRoot(t), Args: []string{"/bin/sh", "-c", script}, Hostname: "box"}
	for _, f := range mod {
		f(&spec)
	}
	return runSpec(t, spec)
}

// installProbe copies the test binary into rootfs as /acetate-probe, for
// checks that need a system call no tool in the image makes. The test binary
// is statically linked.
func installProbe(t *testing.T, rootfs string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "acetate-probe"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	return "/acetate-probe"
}

// probeMain runs inside a container as /acetate-probe __probe CHECK.
func probeMain(args []string) int {
	if len(args) == 0 {
		return 2
	}
	switch args[0] {
	case "noop":
		return 0
	case "finit_module":
		fd, err := unix.Open("/dev/null", unix.O_RDONLY, 0)
		if err != nil {
			fmt.Println(err)
			return 2
		}
		err = unix.FinitModule(fd, "", 0)
		fmt.Println("finit_module:", err)
		// ENOSYS: a kernel built without modules; TestCapabilities
		// checks that CAP_SYS_MODULE is gone anyway.
		if err == unix.EPERM || err == unix.ENOSYS {
			return 0
		}
		return 1
	case "init-protected":
		// The init's threads other than the one that forked the command
		// keep its capabilities: no thread of it may be traced, nor its
		// /proc files that ptrace guards be opened.
		tasks, err := os.ReadDir("/proc/1/task")
		if err != nil || len(tasks) == 0 {
			fmt.Println("no tasks:", err)
			return 1
		}
		for _, task := range tasks {
			tid, _ := strconv.Atoi(task.Name())
			if err := unix.PtraceAttach(tid); err != unix.EPERM {
				fmt.Println("ptrace attach", tid, err)
				if err == nil {
					unix.PtraceDetach(tid)
				}
				return 1
			}
			for _, f := range []string{"root", "cwd"} {
				if _, err := os.Readlink(fmt.Sprintf("/proc/1/task/%d/%s", tid, f)); err == nil {
					fmt.Println("readable:", f, tid)
					return 1
				}
			}
			for _, f := range []string{"mem", "environ"} {
				if _, err := os.ReadFile(fmt.Sprintf("/proc/1/task/%d/%s", tid, f)); err == nil {
					fmt.Println("readable:", f, tid)
					return 1
				}
			}
		}
		fmt.Println(len(tasks), "threads of init protected")
		return 0
	case "keys":
		return probeKeys(args[1:])
	case "umask":
		return probeUmask(args[1:])
	case "socket":
		return probeSocket(args[1:])
	case "setns":
		// Creating namespaces needs CAP_SYS_ADMIN, which is dropped.
		err := unix.Unshare(unix.CLONE_NEWNS)
		fmt.Println("unshare:", err)
		if err == unix.EPERM {
			return 0
		}
		return 1
	}
	return 2
}

// useUnifiedRoot points the launcher's cgroup root at this hybrid host's
// v2 tree for the test, where the v2 code paths run against a real kernel
// (in this process only: Start's supervisor is another), and returns it; it
// skips on a host that has none.
func useUnifiedRoot(t *testing.T) string {
	t.Helper()
	unified := "/sys/fs/cgroup/unified"
	if v2, _, err := detectCgroups(unified); err != nil || !v2 {
		t.Skipf("no cgroup v2 tree with a controller at %s (not a hybrid host): %v", unified, err)
	}
	saved := cgroupRoot
	cgroupRoot = unified
	t.Cleanup(func() { cgroupRoot = saved })
	return unified
}
