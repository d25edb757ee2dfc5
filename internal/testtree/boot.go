package testtree

import (
	"os"
	"path/filepath"
	"testing"
)

// The service each booting tree (SystemdRootfs, SysvinitRootfs) starts at
// boot: busybox httpd listening on loopback inside the container, serving
// /srv/www/index.html. `busybox wget -qO- http://127.0.0.1/` run inside
// prints ServiceAnswer once the OS is up.
const (
	ServiceAnswer = "acetate-test-service" // the whole body, no newline
	ServiceAddr   = "127.0.0.1"
	ServicePort   = 80
	// TemplateHostname is the booting trees' /etc/hostname.
	TemplateHostname = "template"
)

// SystemdRootfs returns a Debian bookworm tree that boots systemd 252
// (minbase with systemd-sysv, dbus and busybox; the test service enabled as
// acetate-test-http.service; root's password empty; /etc/machine-id empty),
// from $ACETATE_TEST_SYSTEMD or /var/cache/acetate-test/systemd, or skips the
// test when there is none. Tests must not modify it. docs/boot-reference.md
// says what booting it under systemd-nspawn gives.
func SystemdRootfs(t testing.TB) string {
	t.Helper()
	return bootTree(t, "systemd", "ACETATE_TEST_SYSTEMD", "etc/systemd/system/acetate-test-http.service", "systemd-sysv,dbus,busybox")
}

// SysvinitRootfs returns a Debian bookworm tree that boots sysvinit 3.06
// (minbase with sysvinit-core and busybox; the test service enabled as the
// init script acetate-test-http; a getty on /dev/console besides tty1-tty6;
// root's password empty; /etc/machine-id empty), from $ACETATE_TEST_SYSVINIT
// or /var/cache/acetate-test/sysvinit, or skips the test when there is none.
// Tests must not modify it.
func SysvinitRootfs(t testing.TB) string {
	t.Helper()
	return bootTree(t, "sysvinit", "ACETATE_TEST_SYSVINIT", "etc/init.d/acetate-test-http", "sysvinit-core,busybox")
}

// bootTree finds the booting tree name (made by .ci/setup's boot_tree) by
// its service file, or skips with the command that makes it.
func bootTree(t testing.TB, name, env, service, packages string) string {
	t.Helper()
	dir := os.Getenv(env)
	if dir == "" {
		dir = filepath.Join("/var/cache/acetate-test", name)
	}
	if _, err := os.Stat(filepath.Join(dir, service)); err != nil {
		t.Skipf("no %s tree at %s (%s): run .ci/setup, which makes it with `debootstrap --variant=minbase --include=%s bookworm %s` and adds the test service", name, dir, env, packages, dir)
	}
	return dir
}
