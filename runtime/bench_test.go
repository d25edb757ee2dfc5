package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkStartTrue measures start-to-exit of /bin/true in a container on
// the test rootfs (an overlay mount of it), for acetate and, when installed,
// for bwrap, crun and runc on the same root. The "reexec" case is the floor
// of our design: re-executing the (test) binary and waiting for it, with no
// container setup at all.
func BenchmarkStartTrue(b *testing.B) {
	root := overlayRoot(b)
	ctx := context.Background()
	runOurs := func(spec Spec) func(*testing.B) {
		return func(b *testing.B) {
			measure(b, func(int) {
				code, err := Run(ctx, spec)
				if err != nil || code != 0 {
					b.Fatalf("Run: %d, %v", code, err)
				}
			})
		}
	}
	b.Run("acetate", runOurs(Spec{Rootfs: root, Args: []string{"/bin/true"}}))
	b.Run("acetate-hostnet", runOurs(Spec{Rootfs: root, Args: []string{"/bin/true"}, Network: NetworkHost}))
	b.Run("acetate-cgroup", runOurs(Spec{Rootfs: root, Args: []string{"/bin/true"}, CgroupName: testCgroupName()}))
	b.Run("reexec", func(b *testing.B) {
		measure(b, func(int) {
			if err := exec.Command("/proc/self/exe", "__probe", "noop").Run(); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("bwrap", func(b *testing.B) {
		bwrap := lookPeer(b, "bwrap")
		measure(b, func(int) {
			out, err := exec.Command(bwrap, "--bind", root, "/", "--proc", "/proc", "--dev", "/dev",
				"--unshare-all", "/bin/true").CombinedOutput()
			if err != nil {
				b.Fatalf("bwrap: %v: %s", err, out)
			}
		})
	})
	b.Run("crun", func(b *testing.B) {
		crun := lookPeer(b, "crun")
		bundle := peerBundle(b, root)
		// crun 1.8 refuses a hybrid cgroup layout (a v2 tree that lists any
		// controller, here hugetlb, beside v1 ones) even with cgroups
		// disabled: it runs in a private mount namespace without the v2
		// tree. The namespace belongs to one locked thread, from which
		// crun is started; the thread is discarded afterwards.
		inThreadWithoutUnified(b, func() {
			measure(b, func(i int) {
				out, err := exec.Command(crun, "--cgroup-manager=disabled", "--root", filepath.Join(bundle, "state"),
					"run", "--bundle", bundle, fmt.Sprintf("bench-%d", i)).CombinedOutput()
				if err != nil {
					b.Fatalf("crun: %v: %s", err, out)
				}
			})
		})
	})
	b.Run("runc", func(b *testing.B) {
		runc := lookPeer(b, "runc")
		bundle := peerBundle(b, root)
		measure(b, func(i int) {
			out, err := exec.Command(runc, "--root", filepath.Join(bundle, "state"),
				"run", "--bundle", bundle, fmt.Sprintf("bench-%d", i)).CombinedOutput()
			if err != nil {
				b.Fatalf("runc: %v: %s", err, out)
			}
		})
	})
}

// measure runs f b.N times and reports, besides the mean, the minimum and
// the median time per run: on a shared, busy machine the mean mostly
// measures the neighbours, the minimum the work itself.
func measure(b *testing.B, f func(i int)) {
	times := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		f(i)
		times = append(times, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(times)
	b.ReportMetric(float64(times[0].Nanoseconds()), "min-ns/op")
	b.ReportMetric(float64(times[len(times)/2].Nanoseconds()), "p50-ns/op")
}

func lookPeer(b *testing.B, name string) string {
	p, err := exec.LookPath(name)
	if err != nil {
		b.Skipf("%s is not installed", name)
	}
	return p
}

// peerBundle writes an OCI bundle running /bin/true on root, from the
// runtime's own default spec ("runc spec"), less the devices cgroup rule and
// the terminal.
func peerBundle(b *testing.B, root string) string {
	dir := b.TempDir()
	runc, err := exec.LookPath("runc")
	if err != nil {
		b.Skip("runc is needed to generate the OCI config")
	}
	if out, err := exec.Command(runc, "spec", "--bundle", dir).CombinedOutput(); err != nil {
		b.Fatalf("runc spec: %v: %s", err, out)
	}
	p := filepath.Join(dir, "config.json")
	data, err := os.ReadFile(p)
	if err != nil {
		b.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(data, &cfg); err != nil {
		b.Fatal(err)
	}
	proc := cfg["process"].(map[string]any)
	proc["terminal"] = false
	proc["args"] = []string{"/bin/true"}
	cfg["root"] = map[string]any{"path": root, "readonly": false}
	delete(cfg["linux"].(map[string]any), "resources")
	if data, err = json.Marshal(cfg); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		b.Fatal(err)
	}
	return dir
}

// inThreadWithoutUnified runs f on a locked thread that has a private mount
// namespace in which /sys/fs/cgroup/unified is unmounted.
func inThreadWithoutUnified(b *testing.B, f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		goruntime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := unix.Unshare(unix.CLONE_FS | unix.CLONE_NEWNS); err != nil {
			b.Errorf("unshare: %v", err)
			return
		}
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			b.Errorf("make mounts private: %v", err)
			return
		}
		if err := unix.Unmount("/sys/fs/cgroup/unified", unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
			b.Errorf("unmount unified: %v", err)
			return
		}
		f()
	}()
	<-done
}
