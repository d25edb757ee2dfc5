package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
