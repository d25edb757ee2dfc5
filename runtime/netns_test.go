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
// namespace (made here by unshare(1), holding only lo), not a new one,
// and sees the Spec.EtcFiles bound read-only over its own.
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
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver 198.18.0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runSpec(t, Spec{Rootfs: rootfs, NetNS: ns, EtcFiles: map[string]string{"/etc/resolv.conf": resolv},
		Args: []string{"/bin/sh", "-c", "readlink /proc/self/ns/net; cat /etc/resolv.conf; echo x >/etc/resolv.conf"}})
	want := fmt.Sprintf("net:[%d]\nnameserver 198.18.0.1\n", st.Ino)
	if r.code == 0 || r.stdout != want || !strings.Contains(r.stderr, "Read-only file system") {
		t.Errorf("container's network namespace and resolv.conf %+v, want %q and a read-only file", r, want)
	}
	if err := (&Spec{Rootfs: rootfs, Args: []string{"true"}, NetNS: ns, Network: NetworkHost}).validate(); err == nil {
		t.Errorf("NetNS with the host's network accepted")
	}
}
