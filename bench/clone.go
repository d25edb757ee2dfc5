package bench

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/acetate/acetate/internal/du"

	"github.com/acetate/acetate/fs/overlay"
)

// benchClone measures the latency of making a container: acetate create,
// create+mount with each driver, a plain kernel overlayfs mount (mkdir +
// mount) and a full copy with cp -a; and what each new container costs on
// disk beyond its template.
func benchClone(e *env) error {
	a, err := e.acetate()
	if err != nil {
		return err
	}
	tpl, err := a.template(e, e.data.rootfs)
	if err != nil {
		return err
	}
	n := 1000
	if e.opts.Quick {
		n = 50
	}
	// The first container of a template builds the layers' metadata trees;
	// removing them makes the next create a first one again.
	t, err := a.st.Lookup(tpl)
	if err != nil {
		return err
	}
	if err := e.interleave("clone", "first create of a template (builds metadata trees)", e.rounds(5), []peer{
		{name: "acetate create", setup: func() error {
			for _, d := range t.Layers {
				if err := os.RemoveAll(overlay.MetaDir(a.st.Layers, d)); err != nil {
					return err
				}
			}
			return nil
		}, run: func() error { _, err := a.create(tpl); return err }},
	}); err != nil {
		return err
	}
	before := du.Tree(filepath.Join(a.st.Layers.Root(), "containers")).Disk
	if err := e.interleave("clone", fmt.Sprintf("create (%d containers)", n), n, []peer{
		{name: "acetate create", run: func() error { _, err := a.create(tpl); return err }},
	}); err != nil {
		return err
	}
	perContainer := float64(du.Tree(filepath.Join(a.st.Layers.Root(), "containers")).Disk-before) / float64(n)
	e.report.add(newFigure("clone", "disk per new container beyond the template", "acetate create", "B", []float64{perContainer}))
	e.addLatencyChart("clone", fmt.Sprintf("create (%d containers)", n), "clone-create.svg", "create latency")

	mountN := e.rounds(100)
	peers := []peer{}
	for _, t := range e.acetateTargets() {
		peers = append(peers, peer{name: t.name + " create+mount", missing: t.missing, run: func() error {
			_, err := t.mount(e.data.rootfs)
			return err
		}})
	}
	peers = append(peers, peer{name: "kernel overlayfs mkdir+mount", run: func() error {
		_, err := e.kernelOverlay(e.data.rootfs)
		return err
	}})
	if err := e.interleave("clone", "create+mount", mountN, peers); err != nil {
		return err
	}
	e.addLatencyChart("clone", "create+mount", "clone-mount.svg", "create+mount latency")
	// Mount points pile up; release them before the copies.
	e.unmountAll()
	copies := e.dir("copies")
	k := 0
	return e.interleave("clone", "full copy", e.rounds(5), []peer{{name: "cp -a", run: func() error {
		k++
		dst := filepath.Join(copies, fmt.Sprint(k))
		defer os.RemoveAll(dst)
		return sh(fmt.Sprintf("cp -a %q %q", e.data.rootfs, dst))
	}}})
}

// addLatencyChart adds a distribution chart of every tool's samples for
// one case.
func (e *env) addLatencyChart(scenarioName, cas, file, title string) {
	c := chart{file: file, title: title + " (" + cas + ")", yLabel: "seconds", logY: true}
	for _, f := range e.report.Figures {
		if f.Scenario == scenarioName && f.Case == cas && f.Status == Measured {
			c.boxes = append(c.boxes, box{name: f.Tool, samples: f.Samples})
		}
	}
	if len(c.boxes) > 0 {
		e.report.charts = append(e.report.charts, c)
	}
}
