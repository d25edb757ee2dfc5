package bench

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/acetate/acetate/internal/du"

	"github.com/acetate/acetate/fs/container"
	"github.com/acetate/acetate/templates"
	"golang.org/x/sys/unix"
)

// benchContainersDisk measures the disk really used (allocated blocks) by
// N containers from one template, each changing a few files through its
// mount: acetate (store + containers), kernel overlayfs over an extracted
// rootfs (the rootfs + every upper dir), and full copies (one copy measured,
// times N).
func benchContainersDisk(e *env) error {
	counts := []int{1, 10, 100, 1000}
	if e.opts.Quick {
		counts = []int{1, 10, 30}
	}
	files := templateFiles(e.data.rootfs, 4, 16<<10)
	change := func(dir string, i int) error {
		if err := appendByte(dir, files[:3]); err != nil {
			return err
		}
		if err := os.Remove(filepath.Join(dir, files[3])); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, fmt.Sprintf("new-file-%d", i)), make([]byte, 1024), 0o644)
	}
	acetateBytes, err := e.acetateContainersDisk(counts, change)
	if err != nil {
		return err
	}
	overlayBytes, err := e.overlayContainersDisk(counts, change)
	if err != nil {
		return err
	}
	copyDir := filepath.Join(e.dir("full-copy"), "c")
	if err := sh(fmt.Sprintf("cp -a %q %q", e.data.rootfs, copyDir)); err != nil {
		return err
	}
	if err := change(copyDir, 0); err != nil {
		return err
	}
	one := float64(du.Tree(copyDir).Disk)
	os.RemoveAll(copyDir)
	c := chart{file: "disk-vs-containers.svg", title: "disk used vs number of containers",
		xLabel: "containers", yLabel: "bytes on disk", logX: true, logY: true}
	ways := []struct {
		name  string
		bytes func(i int) float64
	}{
		{"acetate (store + containers)", func(i int) float64 { return acetateBytes[i] }},
		{"kernel overlayfs over extracted rootfs", func(i int) float64 { return overlayBytes[i] }},
		{"full copies (cp -a, one measured × N)", func(i int) float64 { return one * float64(counts[i]) }},
	}
	for _, w := range ways {
		s := series{name: w.name}
		for i, n := range counts {
			e.report.add(newFigure("disk", fmt.Sprintf("%d containers", n), w.name, "B", []float64{w.bytes(i)}))
			s.points = append(s.points, [2]float64{float64(n), w.bytes(i)})
		}
		c.series = append(c.series, s)
	}
	e.report.charts = append(e.report.charts, c)
	return nil
}

// acetateContainersDisk creates containers in a store of their own and
// returns the store's size at each count.
func (e *env) acetateContainersDisk(counts []int, change func(string, int) error) ([]float64, error) {
	st, err := templates.Open(e.dir("disk-store"))
	if err != nil {
		return nil, err
	}
	m, err := container.Open(st)
	if err != nil {
		return nil, err
	}
	if _, err := st.Publish(e.ctx, templates.MustParseRef("base"), e.data.rootfs, templates.PublishOptions{}); err != nil {
		return nil, err
	}
	var out []float64
	made := 0
	for _, n := range counts {
		for ; made < n; made++ {
			name := fmt.Sprintf("c%d", made)
			if _, err := m.Create(name, "base"); err != nil {
				return nil, err
			}
			c, err := m.Mount(e.ctx, name, "overlay", "")
			if err != nil {
				return nil, err
			}
			err = change(c.Mount.Target, made)
			if uerr := m.Unmount(name); err == nil {
				err = uerr
			}
			if err != nil {
				return nil, err
			}
		}
		out = append(out, float64(du.Tree(st.Layers.Root()).Disk))
	}
	return out, nil
}

// overlayContainersDisk does the same with plain kernel overlayfs mounts
// over the extracted rootfs.
func (e *env) overlayContainersDisk(counts []int, change func(string, int) error) ([]float64, error) {
	rootfs := float64(du.Tree(e.data.rootfs).Disk)
	dirs := e.dir("overlay-containers")
	var out []float64
	made := 0
	for _, n := range counts {
		for ; made < n; made++ {
			d := filepath.Join(dirs, fmt.Sprint(made))
			upper, work, mnt := filepath.Join(d, "upper"), filepath.Join(d, "work"), filepath.Join(d, "mnt")
			for _, p := range []string{upper, work, mnt} {
				if err := os.MkdirAll(p, 0o755); err != nil {
					return nil, err
				}
			}
			opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", e.data.rootfs, upper, work)
			if err := unix.Mount("overlay", mnt, "overlay", 0, opts); err != nil {
				return nil, fmt.Errorf("mount overlay: %w", err)
			}
			err := change(mnt, made)
			if uerr := unix.Unmount(mnt, 0); err == nil {
				err = uerr
			}
			if err != nil {
				return nil, err
			}
		}
		out = append(out, rootfs+float64(du.Tree(dirs).Disk))
	}
	return out, nil
}
