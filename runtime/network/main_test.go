package network

import (
	"os"
	"testing"

	"github.com/acetate/acetate/internal/testtree"
	"github.com/vishvananda/netlink"
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
