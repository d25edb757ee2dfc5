package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// nobody is the uid and gid the permission checks run as.
const nobody = 65534

// asNobody runs the shell script script as uid and gid 65534 and returns
// its combined output and whether it succeeded.
func asNobody(t *testing.T, script string) (string, bool) {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err == nil
}

// Permission checks for a caller who is not root: the kernel checks modes
// and owners (default_permissions), and the mount lets other users in
// (allow_other).
func TestPermissionsNotRoot(t *testing.T) {
	onBoth(t, 1, func(t *testing.T, s *stack) {
		write(t, s.lower[0], map[string]string{"private/f": "p", "secret": "s", "public": "r", "mine": "m", "dir/": ""})
		for p, mode := range map[string]os.FileMode{"private": 0o700, "secret": 0o600, "public": 0o644, "mine": 0o600} {
			if err := os.Chmod(filepath.Join(s.lower[0], p), mode); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chown(filepath.Join(s.lower[0], "mine"), nobody, nobody); err != nil {
			t.Fatal(err)
		}
	}, func(t *testing.T, mnt string) {
		allowed := map[string]string{
			"read a world-readable file":      "cat public",
			"read and append to its own file": "cat mine && echo x >> mine",
			"chmod its own file":              "chmod 0640 mine",
			"list a world-readable directory": "ls dir",
		}
		denied := map[string]string{
			"read a 0600 root file":           "cat secret",
			"list a 0700 root directory":      "ls private",
			"write a 0644 root file":          "echo x >> public",
			"create in a 0755 root directory": "touch dir/new",
			"chmod a root file":               "chmod 0777 public",
			"chown its own file to root":      "chown 0 mine",
			"remove a root file":              "rm -f public",
		}
		for what, script := range allowed {
			if out, ok := asNobody(t, "cd "+mnt+" && "+script); !ok {
				t.Errorf("%s: %s", what, out)
			}
		}
		for what, script := range denied {
			out, ok := asNobody(t, "cd "+mnt+" && "+script)
			if ok || !strings.Contains(out, "ermi") && !strings.Contains(out, "not permitted") {
				t.Errorf("%s: succeeded or failed otherwise than with EACCES/EPERM: %q", what, out)
			}
		}
		if b, err := os.ReadFile(filepath.Join(mnt, "public")); err != nil || string(b) != "r" {
			t.Errorf("public after denied writes: %q, %v", b, err)
		}
	})
}
