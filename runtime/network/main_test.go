package network

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	goruntime "runtime"
	"strings"
	"testing"
	"time"

	"github.com/acetate/acetate/internal/testtree"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// TestMain runs the tests in network and mount namespaces of their own
// (see testtree.ReexecInNetns).
func TestMain(m *testing.M) {
	testtree.ReexecInNetns()
	if os.Getenv(childEnv) != "" {
		os.Exit(childMain())
	}
	os.Exit(m.Run())
}

// inNetns runs f on a thread that is in the network namespace at path
// (sockets made there stay there).
func inNetns(t testing.TB, path string, f func()) {
	t.Helper()
	ns, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	errc := make(chan error, 1)
	go func() {
		goruntime.LockOSThread()
		orig, err := netns.Get()
		if err == nil {
			err = netns.Set(ns)
		}
		if err != nil {
			errc <- err
			return // the thread ends, in whatever namespace
		}
		f()
		if err := netns.Set(orig); err != nil {
			errc <- err
			return
		}
		orig.Close()
		goruntime.UnlockOSThread()
		errc <- nil
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// echoServer listens on addr in the namespace at nsPath ("" for the
// test's) and answers each line with the peer's address and the line.
func echoServer(t testing.TB, nsPath, addr string) {
	t.Helper()
	var l net.Listener
	var err error
	listen := func() { l, err = net.Listen("tcp", addr) }
	if nsPath == "" {
		listen()
	} else {
		inNetns(t, nsPath, listen)
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
				line, _ := bufio.NewReader(c).ReadString('\n')
				fmt.Fprintf(c, "%s %s", c.RemoteAddr().(*net.TCPAddr).IP, line)
			}()
		}
	}()
}

// ask dials addr from the namespace at nsPath ("" for the test's), sends
// a line and returns the answer: the address the server saw, and the
// line.
func ask(t testing.TB, nsPath, addr string) (string, error) {
	t.Helper()
	var c net.Conn
	var err error
	dial := func() { c, err = net.DialTimeout("tcp", addr, 3*time.Second) }
	if nsPath == "" {
		dial()
	} else {
		inNetns(t, nsPath, dial)
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

// links returns the names of the links of the test's namespace.
func links(t testing.TB) []string {
	t.Helper()
	ls, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range ls {
		names = append(names, l.Attrs().Name)
	}
	return names
}
