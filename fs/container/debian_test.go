package container_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/acetate/acetate/fs/upper"
	"github.com/acetate/acetate/internal/testtree"
	"github.com/acetate/acetate/internal/treecmp"
)

// TestDebianWorkload installs a local .deb with dpkg inside a container of
// the Debian template, under each driver, commits it, and checks that a
// container created from the committed template has the package
// installed.
func TestDebianWorkload(t *testing.T) {
	testtree.RequireRoot(t)
	rootfs := testtree.DebianRootfs(t)
	deb := testtree.DebPackage(t, "tree")
	e := newEnv(t)
	e.publish("debian", rootfs)
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			e.t = t // the helpers report to the subtest
			installAndCommit(t, e, driver, rootfs, deb)
		})
	}
	e.t = t
}

func installAndCommit(t *testing.T, e *env, driver, rootfs, deb string) {
	c, c2 := "dpkg-"+driver, "tree-"+driver
	e.create(c, "debian")
	mnt := e.mountWith(c, driver)
	if err := treecmp.Compare(rootfs, mnt, treecmp.Options{}); err != nil {
		t.Fatalf("the mounted template differs from the rootfs: %v", err)
	}
	b, err := os.ReadFile(deb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mnt, "tmp/x.deb"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	chroot(t, mnt, "dpkg", "-i", "/tmp/x.deb")
	if err := os.Remove(filepath.Join(mnt, "tmp/x.deb")); err != nil {
		t.Fatal(err)
	}
	e.unmount(c)
	e.commit(c, "debian:"+c2)
	e.create(c2, "debian:"+c2)
	mnt2 := e.mountWith(c2, driver)
	if out := chroot(t, mnt2, "dpkg", "-s", "tree"); !strings.Contains(out, "Status: install ok installed") {
		t.Errorf("dpkg -s tree in a container of the committed template:\n%s", out)
	}
	if out := chroot(t, mnt2, "tree", "-L", "1", "/etc/apt"); !strings.Contains(out, "sources.list.d") {
		t.Errorf("tree does not run in the new container:\n%s", out)
	}
	changes, err := e.m.Diff(c)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ch := range changes {
		found = found || (ch.Path == "/usr/bin/tree" && ch.Kind == upper.Added)
	}
	if !found {
		t.Errorf("diff of the container does not list /usr/bin/tree as added: %v", changes)
	}
}

func chroot(t *testing.T, root string, args ...string) string {
	t.Helper()
	cmd := exec.Command("chroot", append([]string{root}, args...)...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("chroot %s %v: %v\n%s", root, args, err, out)
	}
	return string(out)
}
