package bench

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/acetate/acetate/fs/container"
	"github.com/acetate/acetate/fs/container/archive"
	"github.com/acetate/acetate/internal/du"
	"github.com/acetate/acetate/templates"
	"github.com/acetate/acetate/templates/registry"
	"github.com/acetate/acetate/templates/registry/registrytest"
)

// moveChange is what the moved container changed on its template.
const moveChange = 5 << 20

// benchMove measures moving a container that changed 5 MB on its template
// to a second store that has the template: acetate push then pull through
// a local docker-registry that has the template's image (a site registry),
// against shipping the container's whole root as a tar.zst (what incus copy
// of a dir-backed container, or docker export | import, does) and rsync -a
// of the root to an empty directory (the floor when the target has
// nothing). Time per move, and the bytes that reach the target.
func benchMove(e *env) error {
	a, err := e.acetate()
	if err != nil {
		return err
	}
	name, root, err := a.mountNew(e, e.data.rootfs, "overlay")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(root, "srv"), 0o755); err != nil {
		return err
	}
	changes := 0
	change := func() error { // a new 5 MB each move, so no push finds it in the registry
		changes++
		for i := range moveChange >> 20 {
			if err := writeRandom(filepath.Join(root, fmt.Sprintf("srv/data-%d", i)), 1<<20); err != nil {
				return err
			}
		}
		return nil
	}
	if err := change(); err != nil {
		return err
	}
	target, err := moveTarget(e, a.templates[e.data.rootfs])
	if err != nil {
		return err
	}
	reg, missing := "", needs("docker-registry")
	if missing == "" {
		var stop func()
		if reg, stop, err = registrytest.Run(e.dir("registry")); err != nil {
			return err
		}
		e.onCleanup(stop)
		// The site registry has the template: the first push sends it.
		if _, err := archive.Push(e.ctx, a.m, name, reg+"/bench/c:warm", archive.PushOptions{Registry: registry.Options{Insecure: true}}); err != nil {
			return err
		}
	}
	var sent, received, tarBytes, rsyncBytes int64
	copies := e.dir("move-copies")
	k := 0
	fresh := func() string { k++; return filepath.Join(copies, fmt.Sprint(k)) }
	err = e.interleave("move", "container that changed 5 MB, target has the template", e.rounds(5), []peer{
		{name: "acetate push+pull", missing: missing, setup: func() error {
			if err := change(); err != nil {
				return err
			}
			err := target.Remove(name, true)
			if errors.Is(err, container.ErrNotFound) {
				return nil
			}
			return err
		}, run: func() error {
			ref := fmt.Sprintf("%s/bench/c:%d", reg, changes)
			o := registry.Options{Insecure: true}
			p, err := archive.Push(e.ctx, a.m, name, ref, archive.PushOptions{Registry: o})
			if err != nil {
				return err
			}
			r, err := archive.Pull(e.ctx, target, ref, name, archive.PullOptions{Registry: o})
			if err != nil {
				return err
			}
			sent, received = p.Bytes, r.Bytes
			return nil
		}},
		{name: "tar.zst of the root", missing: needs("tar", "zstd"), run: func() error {
			dst := fresh()
			if err := sh(fmt.Sprintf("mkdir %[2]q && tar -C %[1]q -cf - . | zstd -q -o %[2]q/root.tar.zst && mkdir %[2]q/root && zstd -dcq %[2]q/root.tar.zst | tar -C %[2]q/root -xf -", root, dst)); err != nil {
				return err
			}
			fi, err := os.Stat(filepath.Join(dst, "root.tar.zst"))
			if err == nil {
				tarBytes = fi.Size()
			}
			return err
		}},
		{name: "rsync -a of the root", missing: needs("rsync"), run: func() error {
			dst := fresh()
			if err := sh(fmt.Sprintf("rsync -a %q/ %q/", root, dst)); err != nil {
				return err
			}
			rsyncBytes = du.Tree(dst).Apparent
			return nil
		}},
	})
	if err != nil {
		return err
	}
	for _, f := range []struct {
		tool, cas string
		v         int64
		missing   string
	}{{"acetate push+pull", "bytes received by the target", received, missing},
		{"acetate push+pull", "bytes sent to the registry", sent, missing},
		{"tar.zst of the root", "bytes received by the target", tarBytes, needs("tar", "zstd")},
		{"rsync -a of the root", "bytes received by the target", rsyncBytes, needs("rsync")}} {
		if f.missing != "" {
			e.report.skip("move", f.cas, f.tool, "B", f.missing)
			continue
		}
		e.report.add(newFigure("move", f.cas, f.tool, "B", []float64{float64(f.v)}))
	}
	return nil
}

// moveTarget makes the second store of the move scenario, with template
// tpl published from the same tree as in the run's store.
func moveTarget(e *env, tpl string) (*container.Manager, error) {
	st, err := templates.Open(e.dir("move-target"))
	if err != nil {
		return nil, err
	}
	if _, err := st.Publish(e.ctx, templates.MustParseRef(tpl), e.data.rootfs, templates.PublishOptions{}); err != nil {
		return nil, err
	}
	m, err := container.Open(st)
	if err != nil {
		return nil, err
	}
	e.onCleanup(func() {
		cs, _ := m.List()
		for _, c := range cs {
			if c.Mount != nil {
				m.Unmount(c.Name)
			}
		}
	})
	return m, nil
}
