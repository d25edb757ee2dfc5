package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/acetate/acetate/internal/testtree"
)

// podmanFlags make podman work on this host: cgroupfs on a hybrid cgroup
// hierarchy (which crun refuses), runc, and events in a file, not journald.
var podmanFlags = []string{"--cgroup-manager=cgroupfs", "--runtime=runc", "--events-backend=file"}

// podmanCmd is podman with the storage configuration conf.
func podmanCmd(conf string, args ...string) *exec.Cmd {
	cmd := exec.Command("podman", append(podmanFlags, args...)...)
	cmd.Env = append(os.Environ(), "CONTAINERS_STORAGE_CONF="+conf)
	return cmd
}

// podman runs podman with the storage configuration conf and returns its
// output.
func podman(t *testing.T, conf string, args ...string) string {
	t.Helper()
	out, err := podmanCmd(conf, args...).Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("podman %s: %v: %s%s", strings.Join(args, " "), err, out, stderr)
	}
	return strings.TrimSpace(string(out))
}

// podman, with acetate-fuse as the overlay driver's mount_program, runs a
// container from an image imported from the Debian rootfs.
func TestPodmanMountProgram(t *testing.T) {
	requireFuse(t)
	if _, err := exec.LookPath("podman"); err != nil {
		t.Skipf("podman is not installed (apt-get install podman): %v", err)
	}
	rootfs := testtree.DebianRootfs(t)
	dir := openTempDir(t)
	conf := filepath.Join(dir, "storage.conf")
	err := os.WriteFile(conf, []byte(fmt.Sprintf(`[storage]
driver = "overlay"
graphroot = "%s/graph"
runroot = "%s/run"

[storage.options.overlay]
mount_program = "%s/acetate-fuse"
`, dir, dir, binaryDir(t))), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	tarball := filepath.Join(dir, "rootfs.tar")
	if out, err := exec.Command("tar", "-C", rootfs, "-cf", tarball, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v: %s", err, out)
	}
	image := "localhost/acetate-fuse-test:latest"
	podman(t, conf, "import", "--quiet", tarball, image)
	t.Cleanup(func() {
		podmanCmd(conf, "system", "reset", "--force").Run()
	})
	// The host's hard limits are below podman's default ulimits, and
	// raising them needs CAP_SYS_RESOURCE.
	out := podman(t, conf, "run", "--rm", "--network=none", "--ulimit=nofile=1024:1024", "--ulimit=nproc=1024:1024",
		image, "sh", "-c", "cat /etc/debian_version && grep ' / / ' /proc/self/mountinfo && echo x > /new && cat /new")
	want, err := os.ReadFile(filepath.Join(rootfs, "etc/debian_version"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(out, "\n")
	if len(lines) != 3 || lines[0] != strings.TrimSpace(string(want)) || lines[2] != "x" {
		t.Fatalf("container printed %q, want the Debian version, its root mount, x", out)
	}
	if !strings.Contains(lines[1], " - fuse.acetate ") {
		t.Errorf("container's root is not served by acetate-fuse: %s", lines[1])
	}
}
