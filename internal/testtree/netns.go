package testtree

import (
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// netnsEnv marks a test process that runs in network and mount
// namespaces of its own.
const netnsEnv = "ACETATE_TEST_NETNS"

// ReexecInNetns runs the test binary again in new network and mount
// namespaces (unshare(1) --net --mount) and exits with its status, unless
// it already runs there, or cannot (not root, no unshare): then it
// returns, and tests that call RequireNetns skip. A TestMain calls it
// first thing. So every bridge, address, veth and nftables rule a test
// makes is made in a namespace of the test's, never in the machine's own,
// and every mount the test leaves goes with its mount namespace. Not `ip
// netns exec`, which remounts /sys and hides /sys/fs/cgroup; unshare
// keeps the mounts as they are.
func ReexecInNetns() {
	if os.Getenv(netnsEnv) != "" || os.Geteuid() != 0 {
		return
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		return
	}
	cmd := exec.Command(unshare, append([]string{"--net", "--mount", "--", os.Args[0]}, os.Args[1:]...)...)
	cmd.Env = append(os.Environ(), netnsEnv+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		os.Exit(ee.ExitCode())
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "re-execute the tests in a new network namespace:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// RequireNetns skips a test that does not run in a network namespace of
// the test binary's own (see ReexecInNetns), and brings its loopback
// interface up (a new namespace's is down).
func RequireNetns(t testing.TB) {
	t.Helper()
	if os.Getenv(netnsEnv) == "" {
		t.Skip("needs root and unshare(1): network tests run in a network namespace of their own")
	}
	if err := loopbackUp(); err != nil {
		t.Fatal(err)
	}
}

var loopbackUp = sync.OnceValue(func() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err == nil {
		err = unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr)
	}
	if err == nil {
		ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
		err = unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
	}
	if err != nil {
		return fmt.Errorf("bring lo up in the test's network namespace: %w", err)
	}
	return nil
})
