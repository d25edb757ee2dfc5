package bench

import (
	"fmt"
	"slices"

	"github.com/acetate/acetate/fs/container"
	"github.com/acetate/acetate/templates"
)

// acetateStore is the store and containers one run uses, made on first use.
type acetateStore struct {
	st        *templates.Store
	m         *container.Manager
	templates map[string]string // source dir -> template name
	n         int               // containers made, for unique names
	// cgroups are the store's cgroup directories (acetate/STORE), once a
	// container of it has started (see started).
	cgroups []string
}

// started learns the store's cgroup directories from the container whose
// init is pid, so that they are removed at the end.
func (a *acetateStore) started(pid int) {
	if a.cgroups == nil {
		a.cgroups = storeCgroups(pid)
	}
}

func (e *env) acetate() (*acetateStore, error) {
	if e.store != nil {
		return e.store, nil
	}
	st, err := templates.Open(e.dir("acetate"))
	if err != nil {
		return nil, err
	}
	m, err := container.Open(st)
	if err != nil {
		return nil, err
	}
	e.store = &acetateStore{st: st, m: m, templates: map[string]string{}}
	e.onCleanup(func() { removeEmptyCgroups(e.store.cgroups) }) // after the containers' removal
	e.onCleanup(func() { e.unmountAll() })
	return e.store, nil
}

// unmountAll unmounts every container of the run's store.
func (e *env) unmountAll() {
	cs, _ := e.store.m.List()
	for _, c := range cs {
		if c.Mount != nil {
			e.store.m.Unmount(c.Name)
		}
	}
}

// template publishes src once and returns its template name.
func (a *acetateStore) template(e *env, src string) (string, error) {
	if name, ok := a.templates[src]; ok {
		return name, nil
	}
	name := fmt.Sprintf("t%d", len(a.templates))
	if _, err := a.st.Publish(e.ctx, templates.MustParseRef(name), src, templates.PublishOptions{}); err != nil {
		return "", err
	}
	a.templates[src] = name
	return name, nil
}

// create makes a new container from template.
func (a *acetateStore) create(template string) (string, error) {
	a.n++
	name := fmt.Sprintf("c%d", a.n)
	_, err := a.m.Create(name, template)
	return name, err
}

// mount creates a container from src's template and mounts it with driver,
// returning the mount point.
func (a *acetateStore) mount(e *env, src, driver string) (string, error) {
	_, target, err := a.mountNew(e, src, driver)
	return target, err
}

// mountNew is mount that also returns the container's name.
func (a *acetateStore) mountNew(e *env, src, driver string) (name, target string, err error) {
	tpl, err := a.template(e, src)
	if err != nil {
		return "", "", err
	}
	if name, err = a.create(tpl); err != nil {
		return "", "", err
	}
	c, err := a.m.Mount(e.ctx, name, driver, "")
	if err != nil {
		return "", "", err
	}
	return name, c.Mount.Target, nil
}

// acetateTargets are acetate's drivers as union targets; a driver that is
// not built in is reported as missing.
func (e *env) acetateTargets() []target {
	var ts []target
	for _, driver := range []string{"overlay", "fuse"} {
		t := target{name: "acetate " + driver}
		if !slices.Contains(container.DriverNames(), driver) {
			t.missing = "driver " + driver + " is not available in this build"
		}
		t.mount = func(lower string) (string, error) {
			a, err := e.acetate()
			if err != nil {
				return "", err
			}
			return a.mount(e, lower, driver)
		}
		ts = append(ts, t)
	}
	return ts
}
