package network

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acetate/acetate/internal/testtree"
	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
)

var testSubnet = netip.MustParsePrefix("198.18.0.0/24")

// testStore returns a store in a temporary root with network "t" on
// testSubnet, every container of which is released at cleanup.
func testStore(t *testing.T) (*Store, string) {
	t.Helper()
	testtree.RequireNetns(t)
	root := t.TempDir()
	s := Open(root)
	if _, err := s.Create("t", testSubnet, netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		nets, _ := s.List()
		for _, n := range nets {
			ls, _ := s.Leases(n.Name)
			for _, l := range ls {
				s.Release(l.Container, nsPath(root, l.Container))
			}
			s.Remove(n.Name)
		}
	})
	return s, root
}

func nsPath(root, container string) string { return filepath.Join(root, container+".netns") }

func attach(t *testing.T, s *Store, root, container string, o AttachOptions) *Endpoint {
	t.Helper()
	o.Container, o.NetNS = container, nsPath(root, container)
	if o.Network == "" {
		o.Network = "t"
	}
	ep, err := s.Attach(o)
	if err != nil {
		t.Fatal(err)
	}
	return ep
}

// state is what the tests compare before and after a refused change.
func state(t *testing.T, s *Store) string {
	t.Helper()
	nets, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, n := range nets {
		ls, err := s.Leases(n.Name)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s %s %s %v\n", n.Name, n.Subnet, n.Gateway, ls)
	}
	return b.String() + strings.Join(links(t), ",")
}

func TestCreateRefusals(t *testing.T) {
	s, _ := testStore(t)
	// A route of the host: the uplink of this namespace.
	testtree.Elsewhere(t, t.TempDir())
	before := state(t, s)
	for _, c := range []struct {
		name, subnet, gateway string
		want                  error
	}{
		{"t", "198.18.8.0/24", "", ErrExists},
		{"bad/name", "198.18.8.0/24", "", ErrInvalid},
		{"x", "198.18.8.5/24", "", ErrInvalid},   // host bits
		{"x", "198.18.8.0/31", "", ErrInvalid},   // no room
		{"x", "fd00::/64", "", ErrInvalid},       // IPv4 only
		{"x", "198.18.0.128/25", "", ErrOverlap}, // inside t
		{"x", "198.18.0.0/16", "", ErrOverlap},   // around t
		{"x", "198.19.0.0/25", "", ErrOverlap},   // the uplink's route
		{"x", "198.18.8.0/24", "198.18.9.1", ErrInvalid},
		{"x", "198.18.8.0/24", "198.18.8.255", ErrInvalid},
	} {
		var gw netip.Addr
		if c.gateway != "" {
			gw = netip.MustParseAddr(c.gateway)
		}
		p, _ := netip.ParsePrefix(c.subnet)
		_, err := s.Create(c.name, p, gw)
		if !errors.Is(err, c.want) {
			t.Errorf("create %s %s %s: %v, want %v", c.name, c.subnet, c.gateway, err, c.want)
		} else {
			t.Logf("create %s %s %s: %v", c.name, c.subnet, c.gateway, err)
		}
	}
	if after := state(t, s); after != before {
		t.Errorf("a refused create changed the store:\n%s\nthen\n%s", before, after)
	}
	n, err := s.Create("x", netip.MustParsePrefix("198.18.8.0/24"), netip.MustParseAddr("198.18.8.254"))
	if err != nil || n.Gateway.String() != "198.18.8.254" || !strings.HasPrefix(n.Bridge, "acbr-") {
		t.Fatalf("create x: %+v, %v", n, err)
	}
}

func TestAttachReachByAddressAndName(t *testing.T) {
	s, root := testStore(t)
	a := attach(t, s, root, "a", AttachOptions{})
	b := attach(t, s, root, "b", AttachOptions{Hostname: "bee"})
	if a.Addr.String() != "198.18.0.2" || b.Addr.String() != "198.18.0.3" {
		t.Fatalf("addresses %s %s, want the lowest free after the gateway", a.Addr, b.Addr)
	}
	// The container's side: eth0 with its address and stable MAC, lo up,
	// a default route through the gateway.
	testtree.InNetnsDo(t, b.NetNS, func() {
		l, err := netlink.LinkByName("eth0")
		if err != nil {
			t.Error(err)
			return
		}
		if l.Attrs().HardwareAddr.String() != "02:ac:c6:12:00:03" || l.Attrs().Flags&net.FlagUp == 0 {
			t.Errorf("eth0: %v %v", l.Attrs().HardwareAddr, l.Attrs().Flags)
		}
		addrs, _ := netlink.AddrList(l, netlink.FAMILY_V4)
		if len(addrs) != 1 || addrs[0].IPNet.String() != "198.18.0.3/24" {
			t.Errorf("eth0 addresses %v", addrs)
		}
		routes, _ := netlink.RouteList(nil, netlink.FAMILY_V4)
		def := false
		for _, r := range routes {
			def = def || ((r.Dst == nil || r.Dst.String() == "0.0.0.0/0") && r.Gw.String() == "198.18.0.1")
		}
		if !def {
			t.Errorf("no default route via the gateway: %v", routes)
		}
	})
	testtree.EchoServer(t, b.NetNS, "198.18.0.3:80")
	if got, err := testtree.Ask(t, a.NetNS, "198.18.0.3:80"); err != nil || got != "198.18.0.2 hello" {
		t.Fatalf("a to b: %q, %v", got, err)
	}
	// IPv6 on the link: the network's ULA prefix and the IPv4 host part.
	if !a.Network.Subnet6.IsValid() || a.Addr6 != a.Network.Addr6(a.Addr) || !strings.HasSuffix(b.Addr6.String(), "::3") {
		t.Errorf("IPv6 addresses %s %s in %s", a.Addr6, b.Addr6, a.Network.Subnet6)
	}
	b6 := netip.AddrPortFrom(b.Addr6, 81).String()
	testtree.EchoServer(t, b.NetNS, b6)
	if got, err := testtree.Ask(t, a.NetNS, b6); err != nil || got != a.Addr6.String()+" hello" {
		t.Errorf("a to b over IPv6: %q, %v", got, err)
	}
	// The containers' hosts file names both; a third, attached later, is
	// there at once, in the same file (bound over every /etc/hosts).
	c := attach(t, s, root, "c", AttachOptions{})
	hosts, err := os.ReadFile(a.Hosts)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"198.18.0.2\ta\n", "198.18.0.3\tb bee\n", "198.18.0.4\tc\n", "127.0.0.1\tlocalhost\n", b.Addr6.String() + "\tb bee\n"} {
		if !strings.Contains(string(hosts), want) {
			t.Errorf("hosts file lacks %q:\n%s", want, hosts)
		}
	}
	// Detach keeps the lease (the same address at the next start) and
	// removes the veth and the namespace file.
	if err := s.Detach("c", c.NetNS); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(c.NetNS); !os.IsNotExist(err) {
		t.Errorf("namespace file after detach: %v", err)
	}
	// The veth goes with the namespace, freed by the kernel in the
	// background (after RCU grace periods: seconds on a loaded machine).
	// It stayed for good when a thread of this process was left in the
	// namespace (see TestMakeNetnsLeavesNoThread).
	gone := false
	for deadline := time.Now().Add(2 * time.Minute); !gone && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		_, err := netlink.LinkByName(c.Veth)
		gone = err != nil
	}
	if !gone {
		t.Errorf("veth %s left after detach", c.Veth)
	}
	// ... and with a new hostname, which the hosts file shows.
	c2 := attach(t, s, root, "c", AttachOptions{Hostname: "sea"})
	if c2.Addr != c.Addr {
		t.Errorf("reattached at %s, had %s", c2.Addr, c.Addr)
	}
	if hosts, _ := os.ReadFile(a.Hosts); !strings.Contains(string(hosts), "198.18.0.4\tc sea\n") {
		t.Errorf("hosts file after c's new hostname:\n%s", hosts)
	}
	// Release frees the address and the name.
	if err := s.Release("c", c.NetNS); err != nil {
		t.Fatal(err)
	}
	hosts, _ = os.ReadFile(a.Hosts)
	if strings.Contains(string(hosts), "\tc\n") {
		t.Errorf("released c still in the hosts file:\n%s", hosts)
	}
	if d := attach(t, s, root, "d", AttachOptions{}); d.Addr != c.Addr {
		t.Errorf("d got %s, want c's freed %s", d.Addr, c.Addr)
	}
}

// No thread of the process is left in a namespace makeNetns made: a
// thread left there (the main thread, which Go never ends, once the
// namespace was made on it) kept the namespace, and the container's veth,
// as long as the process (CI: a detached container's veth still there
// two minutes on).
func TestMakeNetnsLeavesNoThread(t *testing.T) {
	testtree.RequireNetns(t)
	dir := t.TempDir()
	for i := range 20 {
		path := filepath.Join(dir, fmt.Sprint(i))
		if err := makeNetns(path); err != nil {
			t.Fatal(err)
		}
		if in := testtree.ThreadsIn(t, path); len(in) != 0 {
			t.Errorf("threads %v are in the namespace made on %s", in, path)
		}
		if err := removeNetns(path); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBridgeAddressStays is the defect a bridge's changing MAC made: a
// Linux bridge without an address of its own takes the lowest of its
// ports', so a container joining or leaving changed the gateway's MAC
// under the others, whose ARP entries kept the old one for seconds and
// whose packets to the gateway were dropped meanwhile (CI: a container's
// connection out through masquerade hung after another container's run
// ended). The bridge keeps the MAC it was made with as a port with a
// lower one comes and goes, and the others still reach out.
func TestBridgeAddressStays(t *testing.T) {
	s, root := testStore(t)
	a := attach(t, s, root, "a", AttachOptions{})
	want := macOf(a.Network.Gateway).String()
	bridgeMAC := func() string {
		br, err := netlink.LinkByName(a.Network.Bridge)
		if err != nil {
			t.Fatal(err)
		}
		return br.Attrs().HardwareAddr.String()
	}
	if got := bridgeMAC(); got != want {
		t.Fatalf("bridge MAC %s, want %s", got, want)
	}
	low := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "lowmac", HardwareAddr: net.HardwareAddr{0x02, 0, 0, 0, 0, 1}}, PeerName: "lowmac-peer"}
	if err := netlink.LinkAdd(low); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { netlink.LinkDel(low) })
	br, err := netlink.LinkByName(a.Network.Bridge)
	if err == nil {
		err = netlink.LinkSetMaster(low, br)
	}
	if err == nil {
		err = netlink.LinkSetUp(low)
	}
	if err != nil {
		t.Fatal(err)
	}
	if got := bridgeMAC(); got != want {
		t.Errorf("bridge MAC %s with a lower port's MAC there, want %s", got, want)
	}
	if err := netlink.LinkDel(low); err != nil {
		t.Fatal(err)
	}
	if got := bridgeMAC(); got != want {
		t.Errorf("bridge MAC %s after that port left, want %s", got, want)
	}
	testtree.EchoServer(t, "", a.Network.Gateway.String()+":80")
	if got, err := testtree.Ask(t, a.NetNS, a.Network.Gateway.String()+":80"); err != nil || got != a.Addr.String()+" hello" {
		t.Errorf("a to the gateway: %q, %v", got, err)
	}
}

func TestAddressRefusals(t *testing.T) {
	s, root := testStore(t)
	attach(t, s, root, "a", AttachOptions{Addr: netip.MustParseAddr("198.18.0.77")})
	before := state(t, s)
	for _, addr := range []string{"198.18.0.77", "198.18.1.5", "198.18.0.0", "198.18.0.255", "198.18.0.1"} {
		_, err := s.Attach(AttachOptions{Network: "t", Container: "b", NetNS: nsPath(root, "b"), Addr: netip.MustParseAddr(addr)})
		if !errors.Is(err, ErrAddress) {
			t.Errorf("--ip %s: %v, want ErrAddress", addr, err)
		} else {
			t.Logf("--ip %s: %v", addr, err)
		}
	}
	if _, err := s.Attach(AttachOptions{Network: "nope", Container: "b", NetNS: nsPath(root, "b")}); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown network: %v", err)
	}
	if err := s.Remove("t"); !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "by a") {
		t.Errorf("remove of a used network: %v", err)
	} else {
		t.Logf("network rm: %v", err)
	}
	if after := state(t, s); after != before {
		t.Errorf("a refusal changed the store:\n%s\nthen\n%s", before, after)
	}
}

func TestPublishAndMasquerade(t *testing.T) {
	s, root := testStore(t)
	elsewhere := testtree.Elsewhere(t, root)
	web := attach(t, s, root, "web", AttachOptions{Publish: []Port{{HostPort: 8080, Port: 80, Proto: "tcp"}}})
	testtree.EchoServer(t, web.NetNS, ":80")
	// From the host elsewhere, to this host's address: the client's own
	// address reaches the container.
	if got, err := testtree.Ask(t, elsewhere, "198.19.0.1:8080"); err != nil || got != "198.19.0.2 hello" {
		t.Errorf("elsewhere to the published port: %q, %v", got, err)
	}
	// From this host itself, 127.0.0.1 and its own addresses.
	for _, addr := range []string{"127.0.0.1:8080", "198.19.0.1:8080", "198.18.0.1:8080"} {
		if got, err := testtree.Ask(t, "", addr); err != nil || !strings.HasSuffix(got, " hello") {
			t.Errorf("host to %s: %q, %v", addr, got, err)
		}
	}
	// From another container, by the host's address (hairpin).
	other := attach(t, s, root, "other", AttachOptions{})
	if got, err := testtree.Ask(t, other.NetNS, "198.19.0.1:8080"); err != nil || !strings.HasSuffix(got, " hello") {
		t.Errorf("container to the published port: %q, %v", got, err)
	}
	// Outbound: the container reaches the host elsewhere, which sees this
	// host's address (masquerade) and has no route to the subnet.
	testtree.EchoServer(t, elsewhere, "198.19.0.2:9000")
	if got, err := testtree.Ask(t, web.NetNS, "198.19.0.2:9000"); err != nil || got != "198.19.0.1 hello" {
		t.Errorf("container to elsewhere: %q, %v", got, err)
	}
	// The port is taken while web holds it; a host address apart is not.
	_, err := s.Attach(AttachOptions{Network: "t", Container: "x", NetNS: nsPath(root, "x"), Publish: []Port{{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 8080, Port: 80, Proto: "tcp"}}})
	if !errors.Is(err, ErrPortUsed) || !strings.Contains(err.Error(), "web") {
		t.Errorf("second publish of 8080: %v", err)
	}
	attach(t, s, root, "y", AttachOptions{Publish: []Port{{HostPort: 8080, Port: 80, Proto: "udp"}}})
	// Stopping web removes its rules: the port answers no more.
	if err := s.Detach("web", web.NetNS); err != nil {
		t.Fatal(err)
	}
	if n := countRules(t, "ctr=web"); n != 0 {
		t.Errorf("%d rules of web after detach", n)
	}
	if got, err := testtree.Ask(t, elsewhere, "198.19.0.1:8080"); err == nil {
		t.Errorf("published port answers after detach: %q", got)
	}
}

// countRules counts acetate's rules whose comment starts with prefix.
func countRules(t *testing.T, prefix string) int {
	t.Helper()
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ch := range chains {
		rules, _ := c.GetRules(table, ch)
		for _, r := range rules {
			if strings.HasPrefix(comment(r), prefix) {
				n++
			}
		}
	}
	return n
}

// TestGuardLoopbackFromBridge: the bridge has route_localnet; a container
// must still not reach the host's loopback-only services through it
// (CVE-2020-8558). Container root has CAP_NET_RAW and can send such a
// packet; here a route in the container's namespace sends a datagram to
// the host's 127.0.0.2 through the gateway (one way: the container itself
// drops a reply from a loopback source).
func TestGuardLoopbackFromBridge(t *testing.T) {
	s, root := testStore(t)
	a := attach(t, s, root, "a", AttachOptions{})
	testtree.InNetnsDo(t, a.NetNS, func() {
		eth0, err := netlink.LinkByName("eth0")
		if err == nil {
			_, dst, _ := net.ParseCIDR("127.0.0.2/32")
			err = netlink.RouteAdd(&netlink.Route{LinkIndex: eth0.Attrs().Index, Dst: dst, Gw: net.ParseIP("198.18.0.1")})
		}
		if err != nil {
			t.Error(err)
		}
	})
	pc, err := net.ListenPacket("udp", "127.0.0.2:7000")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	testtree.InNetnsDo(t, a.NetNS, func() {
		c, err := net.Dial("udp", "127.0.0.2:7000")
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		for range 3 {
			c.Write([]byte("reboot"))
		}
	})
	pc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	buf := make([]byte, 16)
	if n, from, err := pc.ReadFrom(buf); err == nil {
		t.Errorf("the host's loopback got %q from %v, a container", buf[:n], from)
	}
}

func TestManyAtOnceThenNothingLeft(t *testing.T) {
	s, root := testStore(t)
	const n = 50
	eps := make([]*Endpoint, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("c%d", i)
			eps[i], errs[i] = s.Attach(AttachOptions{Network: "t", Container: name, NetNS: nsPath(root, name),
				Publish: []Port{{HostPort: uint16(10000 + i), Port: 80, Proto: "tcp"}}})
		}()
	}
	wg.Wait()
	seen := map[netip.Addr]bool{}
	for i, ep := range eps {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if seen[ep.Addr] {
			t.Fatalf("address %s given twice", ep.Addr)
		}
		seen[ep.Addr] = true
		testtree.EchoServer(t, ep.NetNS, ":80")
	}
	for i, ep := range eps {
		if _, err := testtree.Ask(t, eps[(i+1)%n].NetNS, ep.Addr.String()+":80"); err != nil {
			t.Errorf("c%d unreachable at %s: %v", i, ep.Addr, err)
		}
	}
	if got, err := testtree.Ask(t, "", "127.0.0.1:10049"); err != nil || !strings.HasSuffix(got, "hello") {
		t.Errorf("published port of c49: %q %v", got, err)
	}
	for i := range n {
		name := fmt.Sprintf("c%d", i)
		if err := s.Release(name, nsPath(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	assertClean(t, s, root, "t")
}

// assertClean checks that nothing of any container is left: no lease, no
// veth, no namespace file, no container rule.
func assertClean(t *testing.T, s *Store, root, network string) {
	t.Helper()
	if ls, err := s.Leases(network); err != nil || len(ls) != 0 {
		t.Errorf("leases left: %v %v", ls, err)
	}
	for _, l := range links(t) {
		if strings.HasPrefix(l, "acv") {
			t.Errorf("veth %s left", l)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(root, "*.netns")); len(m) != 0 {
		t.Errorf("namespace files left: %v", m)
	}
	if n := countRules(t, "ctr="); n != 0 {
		t.Errorf("%d container rules left", n)
	}
	hosts, _ := os.ReadFile(s.HostsFile(network))
	if strings.Contains(string(hosts), "198.18.0.") {
		t.Errorf("hosts file still names containers:\n%s", hosts)
	}
}

func TestRemoveNetworkRemovesAll(t *testing.T) {
	s, root := testStore(t)
	a := attach(t, s, root, "a", AttachOptions{})
	if err := s.Release("a", a.NetNS); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove("t"); err != nil {
		t.Fatal(err)
	}
	if _, err := netlink.LinkByName(a.Network.Bridge); err == nil {
		t.Errorf("bridge %s left", a.Network.Bridge)
	}
	c, _ := nftables.New()
	if tb, err := c.ListTableOfFamily(table.Name, table.Family); err == nil && tb != nil {
		t.Errorf("table %s left with no network", table.Name)
	}
	if nets, _ := s.List(); len(nets) != 0 {
		t.Errorf("networks left: %v", nets)
	}
}

func TestDefaultNetworkOnFirstUse(t *testing.T) {
	testtree.RequireNetns(t)
	root := t.TempDir()
	s := Open(root)
	saved := DefaultSubnet
	DefaultSubnet = netip.MustParsePrefix("198.18.4.0/24")
	defer func() { DefaultSubnet = saved }()
	ep, err := s.Attach(AttachOptions{Container: "a", NetNS: nsPath(root, "a")})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		s.Release("a", ep.NetNS)
		s.Remove(DefaultNetwork)
	}()
	if ep.Network.Name != DefaultNetwork || ep.Network.Bridge != DefaultBridge || ep.Addr.String() != "198.18.4.2" {
		t.Errorf("default network endpoint %+v", ep)
	}
}

func TestParsePort(t *testing.T) {
	for in, want := range map[string]Port{
		"8080:80":               {HostPort: 8080, Port: 80, Proto: "tcp"},
		"53:53/udp":             {HostPort: 53, Port: 53, Proto: "udp"},
		"127.0.0.1:8080:80/tcp": {HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 8080, Port: 80, Proto: "tcp"},
	} {
		got, err := ParsePort(in)
		again, _ := ParsePort(got.String())
		if err != nil || !reflect.DeepEqual(got, want) || again != got {
			t.Errorf("ParsePort(%q) = %+v (%s), %v", in, got, got, err)
		}
	}
	for _, in := range []string{"80", "0:80", "8080:70000", "8080:80/sctp", "::1:80:80", "x:80:80", ""} {
		if _, err := ParsePort(in); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParsePort(%q): %v, want ErrInvalid", in, err)
		}
	}
}

// A host whose resolv.conf names only systemd-resolved's stub
// (127.0.0.53, not there in a container's namespace) gives its containers
// the upstream servers resolved lists, as docker does.
func TestResolvConf(t *testing.T) {
	s, _ := testStore(t)
	dir := t.TempDir()
	saved, savedSystemd := hostResolvConf, systemdResolvConf
	defer func() { hostResolvConf, systemdResolvConf = saved, savedSystemd }()
	hostResolvConf, systemdResolvConf = filepath.Join(dir, "host"), filepath.Join(dir, "systemd")
	os.WriteFile(hostResolvConf, []byte("nameserver 127.0.0.53\nsearch lan\noptions edns0\n"), 0o644)
	os.WriteFile(systemdResolvConf, []byte("# upstream\nnameserver 198.18.9.9\nnameserver ::1\n"), 0o644)
	for _, c := range []struct{ host, want string }{
		{"nameserver 127.0.0.53\nsearch lan\n", "nameserver 198.18.9.9\n"},
		{"nameserver 198.18.8.8\nnameserver 127.0.0.1\nsearch lan\n", "nameserver 198.18.8.8\nsearch lan\n"},
	} {
		os.WriteFile(hostResolvConf, []byte(c.host), 0o644)
		if err := s.writeResolvConf("t"); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(s.ResolvFile("t"))
		body := strings.TrimRight(string(got[strings.IndexByte(string(got), '\n')+1:]), "\n") + "\n"
		if body != c.want {
			t.Errorf("host %q: resolv.conf %q, want %q", c.host, got, c.want)
		}
	}
}
