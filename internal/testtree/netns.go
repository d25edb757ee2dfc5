package testtree

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acetate/acetate/internal/netnsthread"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
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

// InNetns runs the calling test again, alone, in new network and mount
// namespaces (as ReexecInNetns does for a whole binary) and returns false
// after reporting the run's result; it returns true in that run, where
// the test goes on. For packages whose other tests must stay in the
// machine's namespaces; it costs one more start of the test binary.
func InNetns(t *testing.T) bool {
	t.Helper()
	if os.Getenv(netnsEnv) != "" {
		if err := loopbackUp(); err != nil {
			t.Fatal(err)
		}
		return true
	}
	RequireRoot(t)
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("needs unshare(1): network tests run in a network namespace of their own")
	}
	// The run's own timeout, so that a hang there ends with its stacks.
	args := []string{"--net", "--mount", "--", os.Args[0], "-test.run=^" + t.Name() + "$", "-test.count=1", "-test.timeout=8m"}
	if testing.Verbose() {
		args = append(args, "-test.v")
	}
	cmd := exec.Command(unshare, args...)
	cmd.Env = append(os.Environ(), netnsEnv+"=1")
	out, err := cmd.CombinedOutput()
	t.Logf("in a network namespace of its own:\n%s", out)
	if err != nil {
		t.Fatalf("%s: %v", t.Name(), err)
	}
	return false
}

// NewNetns makes a network namespace bound on a new file in dir, removed
// at cleanup, and returns the file.
func NewNetns(t testing.TB, dir, name string) string {
	t.Helper()
	path := filepath.Join(dir, name+".netns")
	if err := os.WriteFile(path, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("unshare", "--net="+path, "true").CombinedOutput(); err != nil {
		t.Fatalf("unshare --net=%s: %v: %s", path, err, out)
	}
	t.Cleanup(func() { unix.Unmount(path, unix.MNT_DETACH) })
	return path
}

// Elsewhere joins the test's network namespace to a new one, the "host
// elsewhere": 198.19.0.1/24 here, 198.19.0.2/24 there, by a veth pair,
// with a default route here through there. It returns the other
// namespace's file (in dir).
func Elsewhere(t testing.TB, dir string) string {
	t.Helper()
	la := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "uplink", Flags: net.FlagUp}, PeerName: "uplink-peer"}
	if err := netlink.LinkAdd(la); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { netlink.LinkDel(la) })
	addr, _ := netlink.ParseAddr("198.19.0.1/24")
	if err := netlink.AddrAdd(la, addr); err != nil {
		t.Fatal(err)
	}
	if err := netlink.RouteAdd(&netlink.Route{Gw: net.ParseIP("198.19.0.2")}); err != nil {
		t.Fatal(err)
	}
	elsewhere := NewNetns(t, dir, "elsewhere")
	peer, err := netlink.LinkByName("uplink-peer")
	if err != nil {
		t.Fatal(err)
	}
	ns, err := netns.GetFromPath(elsewhere)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	if err := netlink.LinkSetNsFd(peer, int(ns)); err != nil {
		t.Fatal(err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	for _, name := range []string{"lo", "uplink-peer"} {
		l, err := h.LinkByName(name)
		if err == nil && name != "lo" {
			a, _ := netlink.ParseAddr("198.19.0.2/24")
			err = h.AddrAdd(l, a)
		}
		if err == nil {
			err = h.LinkSetUp(l)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return elsewhere
}

// InNetnsDo runs f on a thread that is in the network namespace at path
// (sockets made there stay there).
func InNetnsDo(t testing.TB, path string, f func()) {
	t.Helper()
	if err := netnsthread.Do(netnsthread.Join(path), func() error { f(); return nil }); err != nil {
		t.Fatal(err)
	}
}

// ThreadsIn lists the threads (task ids) of this process that are in the
// network namespace bound at path: a thread left there keeps the
// namespace, and everything in it, as long as the process.
func ThreadsIn(t testing.TB, path string) []string {
	t.Helper()
	var ns unix.Stat_t
	if err := unix.Stat(path, &ns); err != nil {
		t.Fatal(err)
	}
	var in []string
	tasks, _ := filepath.Glob("/proc/self/task/*/ns/net")
	for _, task := range tasks {
		var st unix.Stat_t
		if unix.Stat(task, &st) == nil && st.Dev == ns.Dev && st.Ino == ns.Ino {
			in = append(in, filepath.Base(filepath.Dir(filepath.Dir(task))))
		}
	}
	return in
}

// EchoServer listens on TCP addr in the namespace at nsPath ("" for the
// test's) until cleanup, and answers each line with the peer's address
// and the line.
func EchoServer(t testing.TB, nsPath, addr string) {
	t.Helper()
	var l net.Listener
	var err error
	listen := func() { l, err = net.Listen("tcp", addr) }
	if nsPath == "" {
		listen()
	} else {
		InNetnsDo(t, nsPath, listen)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				line, _ := r.ReadString('\n')
				fmt.Fprintf(c, "%s %s", c.RemoteAddr().(*net.TCPAddr).IP, line)
				// Half-close, then read what the client sent
				// after its line until it closes: closing with
				// unread data would reset the connection,
				// which can reach the client before the answer.
				c.(*net.TCPConn).CloseWrite()
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				io.Copy(io.Discard, r)
			}()
		}
	}()
}

// Ask dials TCP addr from the namespace at nsPath ("" for the test's),
// sends "hello" and a newline, and returns the answer, trimmed; it gives
// up after 3 seconds.
func Ask(t testing.TB, nsPath, addr string) (string, error) {
	t.Helper()
	var c net.Conn
	var err error
	dial := func() { c, err = net.DialTimeout("tcp", addr, 3*time.Second) }
	if nsPath == "" {
		dial()
	} else {
		InNetnsDo(t, nsPath, dial)
	}
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	fmt.Fprintln(c, "hello")
	b, err := io.ReadAll(c)
	return strings.TrimSpace(string(b)), err
}
