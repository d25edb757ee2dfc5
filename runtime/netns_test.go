package runtime

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestJoinNetNS: a container given Spec.NetNS runs in that network
// namespace (made here by unshare(1), holding only lo), not a new one.
func TestJoinNetNS(t *testing.T) {
	rootfs := overlayRoot(t)
	ns := filepath.Join(t.TempDir(), "netns")
	if err := os.WriteFile(ns, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("unshare", "--net="+ns, "true").CombinedOutput(); err != nil {
		t.Skipf("unshare --net=FILE: %v: %s", err, out)
	}
	t.Cleanup(func() { unix.Unmount(ns, unix.MNT_DETACH) })
	var st unix.Stat_t
	if err := unix.Stat(ns, &st); err != nil {
		t.Fatal(err)
	}
	r := runSpec(t, Spec{Rootfs: rootfs, Args: []string{"readlink", "/proc/self/ns/net"}, NetNS: ns})
	if want := fmt.Sprintf("net:[%d]", st.Ino); r.code != 0 || strings.TrimSpace(r.stdout) != want {
		t.Errorf("container's network namespace %+v, want %s", r, want)
	}
	if err := (&Spec{Rootfs: rootfs, Args: []string{"true"}, NetNS: ns, Network: NetworkHost}).validate(); err == nil {
		t.Errorf("NetNS with the host's network accepted")
	}
}
