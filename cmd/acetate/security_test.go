package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// --security-opt: the default filter refuses a new user namespace (the
// first step of lifting a container's own cgroup limits), seccomp=unconfined
// lifts the filter, seccomp=FILE replaces it, no-new-privileges sets
// no_new_privs; anything else is a usage error, as is --pids below -1.
func TestSecurityOpt(t *testing.T) {
	root := debianStore(t)
	profile := filepath.Join(t.TempDir(), "profile.json")
	json := `{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}`
	if err := os.WriteFile(profile, []byte(json), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"run", "--from", "debian", "box", "--", "unshare", "-Ur", "true"}, 1, "Operation not permitted"},
		{[]string{"run", "box", "--security-opt", "seccomp=unconfined", "--", "unshare", "-Ur", "true"}, 0, ""},
		{[]string{"run", "box", "--security-opt", "seccomp=" + profile, "--", "mkdir", "/x"}, 1, "Operation not permitted"},
		{[]string{"run", "box", "--security-opt", "seccomp=" + profile, "--", "unshare", "-Ur", "true"}, 0, ""},
		{[]string{"run", "box", "--security-opt", "no-new-privileges", "--", "grep", "-q", "NoNewPrivs:.1", "/proc/self/status"}, 0, ""},
		{[]string{"run", "box", "--security-opt", "seccomp=/no/such/profile.json", "--", "true"}, 2, "profile.json"},
		{[]string{"run", "box", "--security-opt", "apparmor=x", "--", "true"}, 2, "--security-opt"},
		{[]string{"run", "box", "--pids", "-2", "--", "true"}, 2, "--pids"},
	}
	for _, c := range cases {
		r := run(t, root, nil, c.args...)
		if r.code != c.code || !strings.Contains(r.stderr, c.want) {
			t.Errorf("acetate %v: exit %d, stderr %q; want %d and %q", c.args, r.code, r.stderr, c.code, c.want)
		}
	}
}

// A device node in a container's root (here made in the upper directory
// through the mount, as a template ships one) does not open inside the
// container, on either driver: the host's kernel log (c 1:11) stays out of
// reach, for writing and reading.
func TestDeviceNodeInRootBothDrivers(t *testing.T) {
	root := debianStore(t)
	for _, driver := range []string{"overlay", "fuse"} {
		name := "dev-" + driver
		ok(t, run(t, root, nil, "create", name, "--from", "debian"))
		mnt := strings.TrimSpace(ok(t, run(t, root, nil, "mount", name, "--driver", driver)).stdout)
		err := unix.Mknod(filepath.Join(mnt, "kmsg"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 11)))
		if err != nil {
			run(t, root, nil, "unmount", name)
			t.Fatalf("%s: mknod: %v", driver, err)
		}
		r := run(t, root, nil, "run", name, "--", "sh", "-c", "(exec 3>/kmsg && echo opened); (exec 3</kmsg && echo opened); echo done")
		ok(t, run(t, root, nil, "unmount", name))
		if r.stdout != "done\n" || strings.Count(r.stderr, "Permission denied") != 2 {
			t.Errorf("%s: a device node in the root opened: %+v", driver, r)
		}
	}
}
