package network

import (
	"fmt"
	"github.com/acetate/acetate/internal/testtree"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// childEnv makes the test binary childMain, attaching in the store at
// its value.
const childEnv = "ACETATE_TEST_NETWORK_CHILD"

// childMain attaches and detaches container "k" in a loop until killed.
func childMain() int {
	root := os.Getenv(childEnv)
	s := Open(root)
	o := AttachOptions{Network: "t", Container: "k", NetNS: nsPath(root, "k"), Publish: []Port{{HostPort: 9999, Port: 80, Proto: "tcp"}}}
	for {
		if _, err := s.Attach(o); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if err := s.Detach("k", o.NetNS); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
}

// TestKilledDuringAttach kills (SIGKILL) a process attaching and
// detaching a container at various points: whatever it left (namespace
// file, veth, rules, a lease, a temporary file) does not block the next
// attach of that container, and a release then leaves nothing.
func TestKilledDuringAttach(t *testing.T) {
	s, root := testStore(t)
	for _, d := range []time.Duration{5, 20, 40, 70, 110, 150} {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+root)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(d * time.Millisecond)
		cmd.Process.Kill()
		if err := cmd.Wait(); err != nil && stderr.Len() > 0 {
			t.Fatalf("child: %v: %s", err, stderr.String())
		}
	}
	k := attach(t, s, root, "k", AttachOptions{Publish: []Port{{HostPort: 9999, Port: 80, Proto: "tcp"}}})
	other := attach(t, s, root, "other", AttachOptions{})
	testtree.EchoServer(t, k.NetNS, ":80")
	if got, err := testtree.Ask(t, other.NetNS, k.Addr.String()+":80"); err != nil || !strings.HasSuffix(got, "hello") {
		t.Errorf("after the kills: %q %v", got, err)
	}
	if got, err := testtree.Ask(t, "", "127.0.0.1:9999"); err != nil || !strings.HasSuffix(got, "hello") {
		t.Errorf("published port after the kills: %q %v", got, err)
	}
	for _, c := range []string{"k", "other"} {
		if err := s.Release(c, nsPath(root, c)); err != nil {
			t.Fatal(err)
		}
	}
	assertClean(t, s, root, "t")
}
