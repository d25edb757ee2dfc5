package bench

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// DebianRootfs is where the tests and .ci/setup cache a debootstrap'd
// Debian minbase rootfs; the full run uses it when present.
const DebianRootfs = "/var/cache/acetate-test/rootfs"

// debCache holds downloaded .deb packages (.ci/setup fetches "tree").
const debCache = "/var/cache/acetate-test/debs"

// dataset is the data every scenario works on.
type dataset struct {
	// rootfs is the base tree; noDev the same without device nodes (ostree
	// refuses them); app the base plus one package.
	rootfs, noDev, app string
	files              int
	bytes              int64
	origin, pkg        string
}

func (d *dataset) describe() string {
	return fmt.Sprintf("%s (%d files, %.1f MiB); second template: plus %s", d.origin, d.files, float64(d.bytes)/(1<<20), d.pkg)
}

// prepareData finds or makes the base tree and the second template's tree.
// The full run uses the cached Debian rootfs; --quick, or a machine without
// one, uses a generated tree with Debian minbase's shape (see generateTree).
func (e *env) prepareData() (*dataset, error) {
	d := &dataset{}
	if _, err := os.Stat(filepath.Join(DebianRootfs, "usr/bin/dpkg")); err == nil && !e.opts.Quick {
		d.rootfs, d.origin = DebianRootfs, "Debian bookworm minbase (debootstrap)"
	} else {
		d.rootfs = filepath.Join(e.work, "generated")
		files := 5200
		if e.opts.Quick {
			files = 800
		}
		e.logf("generating a %d-file tree with Debian minbase's size distribution", files)
		if err := generateTree(d.rootfs, files, 1); err != nil {
			return nil, err
		}
		if err := addHostBinary(d.rootfs, "/usr/bin/true"); err != nil {
			return nil, err
		}
		d.origin = "generated tree shaped like Debian minbase (log-normal sizes), plus /usr/bin/true and its libraries"
	}
	d.noDev = filepath.Join(e.work, "rootfs-nodev")
	if err := sh(fmt.Sprintf("cp -a %q %q && rm -rf %q/dev/*", d.rootfs, d.noDev, d.noDev)); err != nil {
		return nil, err
	}
	d.app = filepath.Join(e.work, "app")
	if err := sh(fmt.Sprintf("cp -a %q %q", d.rootfs, d.app)); err != nil {
		return nil, err
	}
	debs, _ := filepath.Glob(filepath.Join(debCache, "*.deb"))
	if len(debs) > 0 && exec.Command("dpkg-deb", "-x", debs[0], d.app).Run() == nil {
		d.pkg = "package " + filepath.Base(debs[0])
	} else {
		if err := generateTree(filepath.Join(d.app, "usr/lib/generated-package"), 40, 2); err != nil {
			return nil, err
		}
		d.pkg = "a generated 40-file package"
	}
	d.files, d.bytes = countTree(d.rootfs)
	return d, nil
}

// generateTree writes n regular files (plus directories and symlinks) under
// dir with sizes drawn from a log-normal distribution like Debian minbase's
// (median about 3 KiB, a tail into megabytes; minbase: ~5200 files, 200 MB).
// Content is pseudo-random text, compressible as binaries roughly are.
func generateTree(dir string, n int, seed uint64) error {
	rng := rand.New(rand.NewPCG(seed, 42))
	alphabet := []byte("abcdefghijklmnopqrstuvwxyz0123456789 \n\x00\x01\x7f")
	for i := range n {
		sub := filepath.Join(dir, fmt.Sprintf("usr/d%02d/s%02d", i%37, i%11))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			return err
		}
		size := int(math.Min(math.Exp(rng.NormFloat64()*1.8+8.0), 12<<20))
		p := make([]byte, size)
		for j := range p {
			p[j] = alphabet[rng.IntN(len(alphabet))]
		}
		name := filepath.Join(sub, fmt.Sprintf("f%05d", i))
		if err := os.WriteFile(name, p, 0o644); err != nil {
			return err
		}
		if i%7 == 0 {
			if err := os.Symlink(filepath.Base(name), name+".link"); err != nil {
				return err
			}
		}
	}
	return nil
}

// countTree counts regular files and their apparent bytes.
func countTree(dir string) (int, int64) {
	var files int
	var bytes int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			files++
			bytes += fi.Size()
		}
		return nil
	})
	return files, bytes
}

// addHostBinary copies a host binary and the shared libraries ldd lists for
// it into dir at the same paths, so a generated tree can start a process.
func addHostBinary(dir, bin string) error {
	out, err := exec.Command("ldd", bin).Output()
	if err != nil {
		return fmt.Errorf("ldd %s: %w", bin, err)
	}
	files := []string{bin}
	for _, f := range strings.Fields(string(out)) {
		if strings.HasPrefix(f, "/") {
			files = append(files, f)
		}
	}
	for _, f := range files {
		dst := filepath.Join(dir, f)
		if err := sh(fmt.Sprintf("mkdir -p %q && cp -L %q %q", filepath.Dir(dst), f, dst)); err != nil {
			return err
		}
	}
	for _, l := range []string{"bin", "lib", "lib64"} {
		if _, err := os.Lstat(filepath.Join(dir, l)); err != nil {
			os.Symlink("usr/"+l, filepath.Join(dir, l))
		}
	}
	return nil
}
