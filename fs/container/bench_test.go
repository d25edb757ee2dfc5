package container_test

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/acetate/acetate/fs/container"
	"github.com/acetate/acetate/fs/overlay"
	"github.com/acetate/acetate/internal/testtree"
	"golang.org/x/sys/unix"
)

// BenchmarkOverlay measures, side by side in one run, on the Debian
// template:
//
//   - metatree-build: building the Debian layer's metadata tree, done once
//     per layer;
//   - create: latency of `create` (p50, p99; 1,000 containers per
//     iteration) and the disk each container uses beyond the template;
//   - mount: create+mount through each driver, against a plain kernel
//     overlayfs mount of the extracted rootfs and against cp -a;
//   - copyup: appending one byte to 1,000 template files, through each
//     driver and through plain kernel overlayfs over the extracted rootfs,
//     with default options and with the overlay driver's.
//
// Run: go test -run '^$' -bench BenchmarkOverlay -benchtime=5x ./fs/container
func BenchmarkOverlay(b *testing.B) {
	testtree.RequireRoot(b)
	rootfs := testtree.DebianRootfs(b)
	e := newEnv(b)
	e.publish("debian", rootfs)
	e.create("warm", "debian") // builds the metadata tree once
	files := templateFiles(b, rootfs, 1000)

	b.Run("metatree-build", func(b *testing.B) {
		tpl, err := e.st.Lookup("debian")
		if err != nil {
			b.Fatal(err)
		}
		meta := overlay.MetaDir(e.st.Layers, tpl.Layers[0])
		for b.Loop() {
			b.StopTimer()
			if err := os.RemoveAll(meta); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if _, err := overlay.BuildMeta(e.st.Layers, tpl.Layers); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("create", func(b *testing.B) { benchCreate(b, e) })
	for _, driver := range drivers {
		b.Run("mount/acetate-"+driver+"-create+mount", func(b *testing.B) {
			benchEach(b, func(i int) {
				name := fmt.Sprint("m-", driver, i)
				e.create(name, "debian")
				e.mountWith(name, driver)
			}, func(i int) { removeContainer(b, e.m, fmt.Sprint("m-", driver, i)) })
		})
	}
	b.Run("mount/kernel-overlayfs", func(b *testing.B) {
		benchEach(b, func(i int) { kernelOverlay(b, rootfs, filepath.Join(b.TempDir(), fmt.Sprint(i)), "") }, func(int) {})
	})
	b.Run("mount/cp-a", func(b *testing.B) {
		dir := b.TempDir()
		benchEach(b, func(i int) { cpA(b, rootfs, filepath.Join(dir, fmt.Sprint(i))) },
			func(i int) { os.RemoveAll(filepath.Join(dir, fmt.Sprint(i))) })
	})
	for _, driver := range drivers {
		b.Run("copyup/acetate-"+driver, func(b *testing.B) {
			benchCopyUp(b, files, func(i int) string {
				name := fmt.Sprint("u-", driver, i)
				e.create(name, "debian")
				return e.mountWith(name, driver)
			}, func(i int) { removeContainer(b, e.m, fmt.Sprint("u-", driver, i)) })
		})
	}
	b.Run("copyup/kernel-overlayfs", func(b *testing.B) {
		benchCopyUp(b, files, func(i int) string {
			return kernelOverlay(b, rootfs, filepath.Join(b.TempDir(), fmt.Sprint("u", i)), "")
		}, func(int) {})
	})
	b.Run("copyup/kernel-overlayfs-metacopy", func(b *testing.B) {
		benchCopyUp(b, files, func(i int) string {
			return kernelOverlay(b, rootfs, filepath.Join(b.TempDir(), fmt.Sprint("um", i)), ",metacopy=on,redirect_dir=on,index=off")
		}, func(int) {})
	})
}

// createsPerOp is the number of containers one create iteration makes.
const createsPerOp = 1000

// benchCreate creates 1,000 containers per iteration and reports create
// latency percentiles and the disk each container uses.
func benchCreate(b *testing.B, e *env) {
	var lat []time.Duration
	var perContainer float64
	for i := 0; b.Loop(); i++ {
		names := make([]string, createsPerOp)
		for j := range names {
			names[j] = fmt.Sprintf("c%d-%d", i, j)
			start := time.Now()
			if _, err := e.m.Create(names[j], "debian"); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
		}
		b.StopTimer()
		var bytes int64
		for _, n := range names {
			bytes += diskBytes(b, filepath.Join(e.st.Layers.Root(), "containers", n))
			removeContainer(b, e.m, n)
		}
		perContainer = float64(bytes) / createsPerOp / 1024
		b.StartTimer()
	}
	slices.Sort(lat)
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
	b.ReportMetric(perContainer, "KiB/container")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// benchEach times op(i) for each iteration, running cleanup(i) outside
// the timer.
func benchEach(b *testing.B, op, cleanup func(i int)) {
	for i := 0; b.Loop(); i++ {
		op(i)
		b.StopTimer()
		cleanup(i)
		b.StartTimer()
	}
}

// benchCopyUp times appending one byte to each of files in a fresh union
// made by mount, with the files' content in the page cache.
func benchCopyUp(b *testing.B, files []string, mount func(i int) string, cleanup func(i int)) {
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		mnt := mount(i)
		for _, f := range files { // warm the lower files' page cache
			if _, err := os.ReadFile(filepath.Join(mnt, f)); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		for _, f := range files {
			fd, err := unix.Open(filepath.Join(mnt, f), unix.O_WRONLY|unix.O_APPEND, 0)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := unix.Write(fd, []byte{'\n'}); err != nil {
				b.Fatal(err)
			}
			unix.Close(fd)
		}
		b.StopTimer()
		cleanup(i)
		b.StartTimer()
	}
	b.ReportMetric(float64(len(files)), "files/op")
}

// templateFiles returns up to n regular files of rootfs, relative.
func templateFiles(b *testing.B, rootfs string, n int) []string {
	var out []string
	filepath.WalkDir(rootfs, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && len(out) < n {
			out = append(out, p[len(rootfs):])
		}
		return nil
	})
	if len(out) < n {
		b.Fatalf("rootfs has %d regular files, want %d", len(out), n)
	}
	return out
}

// kernelOverlay mounts plain kernel overlayfs with lower rootfs, a fresh
// upper directory and extra options (",opt=value..."), its upper, work and
// mount point directories made in the new directory dir, unmounted at
// cleanup, and returns the mount point.
func kernelOverlay(b testing.TB, lower, dir, extra string) string {
	for _, d := range []string{"upper", "work", "mnt"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			b.Fatal(err)
		}
	}
	mnt := filepath.Join(dir, "mnt")
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s/upper,workdir=%s/work%s", lower, dir, dir, extra)
	if err := unix.Mount("overlay", mnt, "overlay", 0, opts); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { unix.Unmount(mnt, 0) })
	return mnt
}

func cpA(b *testing.B, src, dst string) {
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		b.Fatalf("cp -a: %v\n%s", err, out)
	}
}

func removeContainer(b *testing.B, m *container.Manager, name string) {
	if err := m.Remove(name, true); err != nil {
		b.Fatal(err)
	}
}

// diskBytes is the disk space of the tree at dir, as du counts it:
// allocated blocks of every inode, hardlinks once.
func diskBytes(b *testing.B, dir string) int64 {
	var total int64
	seen := map[uint64]bool{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		if !seen[st.Ino] {
			seen[st.Ino] = true
			total += st.Blocks * 512
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return total
}
