package fuse_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	acetatefs "github.com/acetate/acetate/fs"
	"github.com/acetate/acetate/fs/fuse"
	"github.com/acetate/acetate/internal/testtree"
	"github.com/acetate/acetate/layers"
	"github.com/acetate/acetate/layers/layerstest"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// benchData is what the benchmarks share, made once per run: a store with
// the Debian rootfs and a 1 GiB file published into it, and a tarball.
var benchData struct {
	once    sync.Once
	err     error
	dir     string
	rootfs  string
	bigDir  string
	store   *layers.Store
	layers  map[string]digest.Digest // lower dir -> layer
	tarball string
	files   []string // 1000 regular files of the rootfs
}

// cleanupBench removes what the benchmarks made; TestMain calls it.
func cleanupBench() {
	if benchData.dir != "" {
		os.RemoveAll(benchData.dir)
	}
}

func setupBench(b *testing.B) {
	b.Helper()
	testtree.RequireRoot(b)
	rootfs := testtree.DebianRootfs(b)
	benchData.once.Do(func() { benchData.err = makeBenchData(rootfs) })
	if benchData.err != nil {
		b.Fatal(benchData.err)
	}
}

func makeBenchData(rootfs string) error {
	d := &benchData
	var err error
	if d.dir, err = os.MkdirTemp("", "acetate-fuse-bench"); err != nil {
		return err
	}
	d.rootfs = rootfs
	d.bigDir = filepath.Join(d.dir, "big")
	if err := os.Mkdir(d.bigDir, 0o755); err != nil {
		return err
	}
	if err := writeRandom(filepath.Join(d.bigDir, "file"), 1<<30); err != nil {
		return err
	}
	if d.store, err = layers.Open(filepath.Join(d.dir, "store")); err != nil {
		return err
	}
	d.layers = map[string]digest.Digest{}
	for _, dir := range []string{rootfs, d.bigDir} {
		if d.layers[dir], err = layerstest.CommitDir(d.store, dir); err != nil {
			return err
		}
	}
	d.tarball = filepath.Join(d.dir, "usr.tar")
	if out, err := exec.Command("tar", "-C", rootfs, "-cf", d.tarball, "usr").CombinedOutput(); err != nil {
		return fmt.Errorf("tar: %v %s", err, out)
	}
	err = filepath.WalkDir(rootfs, func(p string, e fs.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() && len(d.files) < 1000 {
			if fi, ierr := e.Info(); ierr == nil && fi.Mode()&0o200 != 0 {
				rel, _ := filepath.Rel(rootfs, p)
				d.files = append(d.files, rel)
			}
		}
		return err
	})
	// Let the writeback of what setup wrote finish before anything is
	// timed.
	unix.Sync()
	return err
}

func writeRandom(p string, size int64) error {
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	r := rand.NewChaCha8([32]byte{1})
	if _, err := io.CopyN(f, r, size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// benchTarget mounts a union over the lower directory lower (published in
// the store for fuse) and returns the mount point, unmounted at the end of
// b.
type benchTarget struct {
	name  string
	mount func(b *testing.B, lower string) string
}

var benchTargets = []benchTarget{
	{"fuse", mountFuse(fuse.ServeOptions{})},
	{"fuse-noplus", mountFuse(fuse.ServeOptions{DisableReadDirPlus: true})},
	{"overlay", mountOverlay},
	{"fuse-overlayfs", mountFuseOverlayfs},
}

// unionDirs makes upper, work and mount point directories.
func unionDirs(b *testing.B) (upper, work, mnt string) {
	dir := b.TempDir()
	upper, work, mnt = filepath.Join(dir, "upper"), filepath.Join(dir, "work"), filepath.Join(dir, "mnt")
	for _, p := range []string{upper, work, mnt} {
		if err := os.Mkdir(p, 0o755); err != nil {
			b.Fatal(err)
		}
	}
	return upper, work, mnt
}

func mountFuse(o fuse.ServeOptions) func(b *testing.B, lower string) string {
	return func(b *testing.B, lower string) string { return mountFuseWith(b, lower, o) }
}

func mountFuseWith(b *testing.B, lower string, o fuse.ServeOptions) string {
	upper, work, mnt := unionDirs(b)
	d := &fuse.Driver{Options: o}
	spec := acetatefs.Spec{Store: benchData.store, Layers: []digest.Digest{benchData.layers[lower]}, Upper: upper, Work: work, Target: mnt}
	if err := d.Mount(context.Background(), spec); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { unmountOrDetach(b, mnt, d.Unmount) })
	return mnt
}

func mountOverlay(b *testing.B, lower string) string {
	upper, work, mnt := unionDirs(b)
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work)
	if err := unix.Mount("overlay", mnt, "overlay", 0, opts); err != nil {
		b.Skipf("kernel overlayfs: %v", err)
	}
	b.Cleanup(func() { unmountOrDetach(b, mnt, func(p string) error { return unix.Unmount(p, 0) }) })
	return mnt
}

func mountFuseOverlayfs(b *testing.B, lower string) string {
	if _, err := exec.LookPath("fuse-overlayfs"); err != nil {
		b.Skip("fuse-overlayfs is not installed")
	}
	upper, work, mnt := unionDirs(b)
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work)
	if out, err := exec.Command("fuse-overlayfs", "-o", opts, mnt).CombinedOutput(); err != nil {
		b.Fatalf("fuse-overlayfs: %v %s", err, out)
	}
	b.Cleanup(func() { unmountOrDetach(b, mnt, func(p string) error { return unix.Unmount(p, 0) }) })
	return mnt
}

func unmountOrDetach(b *testing.B, mnt string, um func(string) error) {
	if err := um(mnt); err != nil {
		b.Errorf("unmount %s: %v", mnt, err)
		unix.Unmount(mnt, unix.MNT_DETACH)
	}
}

// dropCaches empties the page, dentry and inode caches (cold runs).
func dropCaches(b *testing.B) {
	unix.Sync()
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0); err != nil {
		b.Skipf("cannot drop caches: %v", err)
	}
}

var temperatures = []string{"warm", "cold"}

// Sequential read of a 1 GiB template file, 1 MiB at a time.
func BenchmarkSeqRead1GiB(b *testing.B) {
	setupBench(b)
	buf := make([]byte, 1<<20)
	for _, temp := range temperatures {
		for _, tg := range benchTargets {
			b.Run(temp+"/"+tg.name, func(b *testing.B) {
				mnt := tg.mount(b, benchData.bigDir)
				p := filepath.Join(mnt, "file")
				read := func() {
					f, err := os.Open(p)
					if err != nil {
						b.Fatal(err)
					}
					defer f.Close()
					if _, err := io.CopyBuffer(io.Discard, onlyReader{f}, buf); err != nil {
						b.Fatal(err)
					}
				}
				b.SetBytes(1 << 30)
				loop(b, temp, read)
			})
		}
	}
}

// onlyReader hides WriterTo, so that io.CopyBuffer really reads.
type onlyReader struct{ io.Reader }

// Stat of every entry of the Debian rootfs, as find -ls does.
func BenchmarkStatWalk(b *testing.B) {
	setupBench(b)
	targets := append([]benchTarget{{"plain", func(*testing.B, string) string { return benchData.rootfs }}}, benchTargets...)
	for _, temp := range temperatures {
		for _, tg := range targets {
			b.Run(temp+"/"+tg.name, func(b *testing.B) {
				mnt := tg.mount(b, benchData.rootfs)
				walk := func() {
					n := 0
					err := filepath.WalkDir(mnt, func(p string, e fs.DirEntry, err error) error {
						if err != nil {
							return err
						}
						var st unix.Stat_t
						n++
						return unix.Lstat(p, &st)
					})
					if err != nil {
						b.Fatal(err)
					}
				}
				loop(b, temp, walk)
			})
		}
	}
}

// loop runs fn once to warm up, then b.N times, dropping the caches before
// each timed run when temp is "cold".
func loop(b *testing.B, temp string, fn func()) {
	fn()
	b.ResetTimer()
	for b.Loop() {
		if temp == "cold" {
			b.StopTimer()
			dropCaches(b)
			b.StartTimer()
		}
		fn()
	}
}

// Copy-up of 1000 template files: append one byte to each.
func BenchmarkCopyUp1000(b *testing.B) {
	setupBench(b)
	for _, tg := range benchTargets {
		b.Run(tg.name, func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				mnt := tg.mount(b, benchData.rootfs)
				b.StartTimer()
				for _, rel := range benchData.files {
					f, err := os.OpenFile(filepath.Join(mnt, rel), os.O_WRONLY|os.O_APPEND, 0)
					if err != nil {
						b.Fatal(err)
					}
					_, err = f.Write([]byte{'\n'})
					if cerr := f.Close(); err == nil {
						err = cerr
					}
					if err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// Untar the rootfs's /usr (about 100 MB, thousands of files) into a
// container, with GNU tar: the time until tar exits, as bench/ measures it,
// with nothing dirty in the page cache at the start.
func BenchmarkUntar(b *testing.B) {
	setupBench(b)
	if fi, err := os.Stat(benchData.tarball); err == nil {
		b.Logf("tarball: %d MB", fi.Size()>>20)
	}
	for _, tg := range benchTargets {
		b.Run(tg.name, func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				mnt := tg.mount(b, benchData.rootfs)
				dst := filepath.Join(mnt, "tmp", "untar")
				if err := os.Mkdir(dst, 0o755); err != nil {
					b.Fatal(err)
				}
				unix.Sync()
				b.StartTimer()
				cmd := exec.Command("tar", "-C", dst, "-xf", benchData.tarball)
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				if err := cmd.Run(); err != nil {
					b.Fatalf("tar: %v %s", err, stderr.Bytes())
				}
			}
		})
	}
}
