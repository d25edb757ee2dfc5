package main

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/acetate/acetate/internal/testtree"
)

// A disk quota from the command line: df / inside a Debian container shows
// it as the filesystem's size under both drivers, dd past it fails with
// "No space left on device" while the same write succeeds in a container
// without one, ls and inspect show the use against it, set refuses to
// shrink it on a mounted container and resizes it on an unmounted one, bad
// sizes are usage errors, and rm leaves no loop device.
func TestDiskQuota(t *testing.T) {
	testtree.RequireDiskImages(t)
	root := debianStore(t)
	if r := run(t, root, nil, "create", "tiny", "--from", "debian", "--disk", "1m"); r.code != 2 {
		t.Errorf("--disk 1m: exit %d, want 2 (%s)", r.code, r.stderr)
	}
	if r := run(t, root, nil, "create", "bad", "--from", "debian", "--inodes", "100"); r.code == 0 {
		t.Error("--inodes without --disk accepted")
	}
	ok(t, run(t, root, nil, "create", "q", "--from", "debian", "--disk", "64m", "--inodes", "2000"))
	ok(t, run(t, root, nil, "create", "free", "--from", "debian"))
	t.Cleanup(func() {
		run(t, root, nil, "rm", "--force", "q", "free")
		if out, _ := exec.Command("losetup", "-a").Output(); strings.Contains(string(out), root) {
			t.Errorf("loop devices left: %s", out)
		}
	})
	dd := "df -P / | tail -1; dd if=/dev/zero of=/fill bs=1M count=80 2>&1; rm /fill"
	for _, driver := range []string{"overlay", "fuse"} {
		r := run(t, root, nil, "run", "--driver", driver, "q", "--", "sh", "-c", dd)
		fields := strings.Fields(r.stdout)
		if len(fields) < 2 || fields[1] != "65536" {
			t.Errorf("%s: df / inside: %q, want 65536 1K-blocks", driver, r.stdout)
		}
		if !strings.Contains(r.stdout, "No space left on device") {
			t.Errorf("%s: dd past the quota: %q", driver, r.stdout)
		}
		if r := ok(t, run(t, root, nil, "run", "--driver", driver, "free", "--", "sh", "-c", dd)); strings.Contains(r.stdout, "No space") {
			t.Errorf("%s: the container without a quota: %q", driver, r.stdout)
		}
	}
	ok(t, run(t, root, nil, "mount", "q"))
	if out := ok(t, run(t, root, nil, "ls")).stdout; !strings.Contains(out, "/"+humanBytes(64<<20)) {
		t.Errorf("ls does not show the quota:\n%s", out)
	}
	if r := run(t, root, nil, "set", "q", "--disk", "32m"); r.code != 1 || !strings.Contains(r.stderr, "unmount it first") {
		t.Errorf("set --disk shrinking a mounted container: exit %d, %s", r.code, r.stderr)
	}
	ok(t, run(t, root, nil, "unmount", "q"))
	if out := ok(t, run(t, root, nil, "set", "q", "--disk", "128m")).stdout; !strings.Contains(out, "disk") {
		t.Errorf("set --disk: %s", out)
	}
	var in struct {
		Quota struct{ Disk, Inodes, Used int64 }
	}
	if err := json.Unmarshal([]byte(ok(t, run(t, root, nil, "inspect", "q", "--format", "json")).stdout), &in); err != nil {
		t.Fatal(err)
	}
	if in.Quota.Disk != 128<<20 || in.Quota.Inodes != 2000 || in.Quota.Used == 0 {
		t.Errorf("inspect quota: %+v", in.Quota)
	}
}
