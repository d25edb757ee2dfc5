package container_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/acetate/acetate/fs/container"
	"github.com/acetate/acetate/internal/testtree"
	"github.com/acetate/acetate/templates"
	"github.com/acetate/acetate/templates/storetest"
)

// env is a temporary store with its container manager.
type env struct {
	t  testing.TB
	st *templates.Store
	m  *container.Manager
}

func newEnv(t testing.TB) *env {
	t.Helper()
	return newEnvAt(t, t.TempDir())
}

// newEnvAt is newEnv with the store at root.
func newEnvAt(t testing.TB, root string) *env {
	t.Helper()
	st, err := templates.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	m, err := container.Open(st)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, st: st, m: m}
	t.Cleanup(func() {
		cs, _ := m.List()
		for _, c := range cs {
			if c.Mount != nil {
				if err := m.Unmount(c.Name); err != nil {
					t.Errorf("cleanup: %v", err)
				}
			}
		}
		e.fsckClean()
	})
	return e
}

func (e *env) publish(ref, src string) *templates.Template {
	e.t.Helper()
	tpl, err := e.st.Publish(context.Background(), templates.MustParseRef(ref), src, templates.PublishOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return tpl
}

func (e *env) create(name, tpl string) *container.Container {
	e.t.Helper()
	c, err := e.m.Create(name, tpl)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// mount mounts name with the overlay driver and returns the mount point.
func (e *env) mount(name string) string {
	e.t.Helper()
	return e.mountWith(name, "overlay")
}

// mountWith mounts name with driver and returns the mount point.
func (e *env) mountWith(name, driver string) string {
	e.t.Helper()
	c, err := e.m.Mount(context.Background(), name, driver, "")
	if err != nil {
		e.t.Fatal(err)
	}
	return c.Mount.Target
}

func (e *env) unmount(name string) {
	e.t.Helper()
	if err := e.m.Unmount(name); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) commit(name, ref string) *templates.Template {
	e.t.Helper()
	tpl, err := e.m.Commit(context.Background(), name, templates.MustParseRef(ref), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return tpl
}

// fsckClean fails the test unless the store is fsck-clean.
func (e *env) fsckClean() {
	e.t.Helper()
	storetest.FsckClean(e.t, e.st)
}

// writeTree writes files (path -> content) under a new directory.
func writeTree(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tree")
	for p, content := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func readFile(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// withContainer is newEnv with template "t" made of files and container
// "c" created from it.
func withContainer(t testing.TB, files map[string]string) *env {
	t.Helper()
	e := newEnv(t)
	e.publish("t", writeTree(t, files))
	e.create("c", "t")
	return e
}

// craftedMount is newEnv with template "crafted" made of the crafted test
// tree (returned as src), and container name created from it and mounted
// at mnt with driver.
func craftedMount(t testing.TB, name, driver string) (e *env, src, mnt string) {
	t.Helper()
	testtree.RequireRoot(t)
	e = newEnv(t)
	src = filepath.Join(t.TempDir(), "src")
	testtree.Crafted(t, src)
	e.publish("crafted", src)
	e.create(name, "crafted")
	return e, src, e.mountWith(name, driver)
}
