package bench

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/acetate/acetate/internal/netnsthread"
	"github.com/acetate/acetate/runtime"
	"github.com/acetate/acetate/runtime/network"
	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
)

// benchNet measures what a bridge network costs (issue 15): TCP
// request/response latency and stream time between two containers'
// namespaces on an acetate network, side by side with the floor (the same
// two namespaces, veths and bridge, without acetate's nftables table),
// and the time networking adds to a start. Everything is made in network
// namespaces of the scenario's own, on addresses of 198.18.0.0/15, never
// in the machine's: acetate's host side lives on a thread that unshared
// its network namespace, and ends with it.
func benchNet(e *env) error {
	const sc = "net"
	dir, err := os.MkdirTemp(e.work, "net-")
	if err != nil {
		return err
	}
	acetate, err := newNetTopology(dir, "acetate", "198.18.0.0/24", true)
	if err != nil {
		return err
	}
	defer acetate.close()
	floor, err := newNetTopology(dir, "floor", "198.18.1.0/24", false)
	if err != nil {
		return err
	}
	defer floor.close()
	topos := []*netTopology{acetate, floor}
	names := []string{"acetate bridge network", "bare netns, veth and bridge"}

	// Latency: 1-byte requests, in interleaved blocks.
	perBlock, blocks := 200, e.rounds(25)
	lat := make([][]float64, len(topos))
	for _, t := range topos {
		if err := t.connect(); err != nil {
			return fmt.Errorf("net %s: %w", t.name, err)
		}
	}
	for b := range blocks {
		for k := range topos {
			i := (k + b) % len(topos)
			s, err := topos[i].pingPong(perBlock)
			if err != nil {
				return fmt.Errorf("net %s: %w", topos[i].name, err)
			}
			lat[i] = append(lat[i], s...)
		}
	}
	for i := range topos {
		e.report.add(newFigure(sc, "TCP request/response, 1 byte each way", names[i], "s", lat[i]))
	}

	// Throughput: one stream of size bytes per sample.
	size := 64 << 20
	if e.opts.Quick {
		size = 8 << 20
	}
	var peers []peer
	for i, t := range topos {
		peers = append(peers, peer{name: names[i], run: func() error { return t.stream(size) }})
	}
	if err := e.interleave(sc, fmt.Sprintf("TCP stream of %d MiB", size>>20), e.rounds(10), peers); err != nil {
		return err
	}
	for i := range topos {
		if f, ok := e.report.figure(sc, fmt.Sprintf("TCP stream of %d MiB", size>>20), names[i]); ok && f.Median > 0 {
			e.report.note(sc, fmt.Sprintf("%s: %.0f MB/s (median)", names[i], float64(size)/f.Median/1e6))
		}
	}
	return acetate.do(func() error { return benchNetStart(e, acetate) })
}

// benchNetStart times /bin/true in a container without a network of its
// own (loopback only) against one attached to the bridge network, and the
// attach and detach alone: what networking adds to a start.
func benchNetStart(e *env, t *netTopology) error {
	root, trueBin, err := e.trueRoot()
	if err != nil {
		return err
	}
	nsPath := filepath.Join(t.dir, "start.netns")
	attach := func() (*network.Endpoint, error) {
		return t.store.Attach(network.AttachOptions{Network: t.name, Container: "start", NetNS: nsPath})
	}
	runTrue := func(netNS string) error {
		code, err := runtime.Run(e.ctx, runtime.Spec{Rootfs: root, Args: []string{trueBin}, NetNS: netNS})
		if err == nil && code != 0 {
			err = fmt.Errorf("exit %d", code)
		}
		return err
	}
	peers := []peer{
		{name: "acetate run, --net none", run: func() error { return runTrue("") }},
		{name: "acetate run, --net bridge", run: func() error {
			ep, err := attach()
			if err != nil {
				return err
			}
			err = runTrue(ep.NetNS)
			if derr := t.store.Detach("start", nsPath); err == nil {
				err = derr
			}
			return err
		}},
		{name: "attach and detach alone", run: func() error {
			if _, err := attach(); err != nil {
				return err
			}
			return t.store.Detach("start", nsPath)
		}},
	}
	const cas = "start-to-exit of /bin/true, and the network's part"
	if err := e.interleave("net", cas, e.rounds(50), peers); err != nil {
		return err
	}
	none, ok1 := e.report.figure("net", cas, peers[0].name)
	bridged, ok2 := e.report.figure("net", cas, peers[1].name)
	if ok1 && ok2 {
		e.report.note("net", fmt.Sprintf("networking adds %s to a start (median; goal ≤ 5 ms)",
			formatValue(bridged.Median-none.Median, "s")))
	}
	return t.store.Release("start", nsPath)
}

// netTopology is two containers' network namespaces, a and b, on a bridge
// network made by package network in a network namespace of its own,
// whose thread stays alive (running do's work) until close. Without rules
// it is the floor: the same veths and bridge, acetate's nftables table
// deleted.
type netTopology struct {
	name, dir string
	store     *network.Store
	ns        [2]string
	addrB     netip.Addr
	work      chan func()
	conn      net.Conn
	server    net.Listener
}

func newNetTopology(dir, name, subnet string, rules bool) (*netTopology, error) {
	t := &netTopology{name: name, dir: filepath.Join(dir, name), work: make(chan func())}
	if err := os.Mkdir(t.dir, 0o755); err != nil {
		return nil, err
	}
	t.store = network.Open(t.dir)
	ready := make(chan error, 1)
	go func() {
		err := netnsthread.Do(netnsthread.Unshare, func() error {
			if err := t.setup(subnet, rules); err != nil {
				return err
			}
			ready <- nil
			for f := range t.work {
				f()
			}
			return nil
		})
		if err != nil {
			ready <- err
		}
	}()
	if err := <-ready; err != nil {
		return nil, fmt.Errorf("net %s: %w", name, err)
	}
	return t, nil
}

// setup runs on t's thread.
func (t *netTopology) setup(subnet string, rules bool) error {
	lo, err := netlink.LinkByName("lo")
	if err == nil {
		err = netlink.LinkSetUp(lo)
	}
	if err != nil {
		return err
	}
	if _, err := t.store.Create(t.name, netip.MustParsePrefix(subnet), netip.Addr{}); err != nil {
		return err
	}
	for i, c := range []string{"a", "b"} {
		ep, err := t.store.Attach(network.AttachOptions{Network: t.name, Container: c, NetNS: filepath.Join(t.dir, c+".netns")})
		if err != nil {
			return err
		}
		t.ns[i], t.addrB = ep.NetNS, ep.Addr
	}
	if rules {
		return nil
	}
	c, err := nftables.New()
	if err != nil {
		return err
	}
	c.DelTable(&nftables.Table{Name: "acetate", Family: nftables.TableFamilyIPv4})
	return c.Flush()
}

// do runs f on t's thread, in its namespace.
func (t *netTopology) do(f func() error) error {
	errc := make(chan error, 1)
	t.work <- func() { errc <- f() }
	return <-errc
}

func (t *netTopology) close() {
	if t.conn != nil {
		t.conn.Close()
		t.server.Close()
	}
	t.do(func() error {
		for _, c := range []string{"a", "b"} {
			t.store.Release(c, filepath.Join(t.dir, c+".netns"))
		}
		return nil
	})
	close(t.work)
}

// inNetns runs f on a thread in the network namespace at path; sockets
// made there stay there.
func inNetns(path string, f func() error) error {
	return netnsthread.Do(netnsthread.Join(path), f)
}

// connect starts b's server (echoing one byte for each) and connects a.
func (t *netTopology) connect() error {
	err := inNetns(t.ns[1], func() (err error) {
		t.server, err = net.Listen("tcp", ":7000")
		return err
	})
	if err != nil {
		return err
	}
	go func() {
		for {
			c, err := t.server.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				var b [1]byte
				if _, err := c.Read(b[:]); err != nil || b[0] != 's' {
					io.CopyN(c, c, 1<<62) // the ping-pong connection
					return
				}
				io.Copy(io.Discard, c) // a stream
			}()
		}
	}()
	return inNetns(t.ns[0], func() (err error) {
		t.conn, err = net.DialTimeout("tcp", netip.AddrPortFrom(t.addrB, 7000).String(), 5*time.Second)
		if err == nil {
			_, err = t.conn.Write([]byte{'p'})
		}
		return err
	})
}

// pingPong sends n 1-byte requests and returns each round trip's time.
func (t *netTopology) pingPong(n int) ([]float64, error) {
	samples := make([]float64, 0, n)
	var b [1]byte
	for range n {
		t0 := time.Now()
		if _, err := t.conn.Write(b[:]); err != nil {
			return nil, err
		}
		if _, err := io.ReadFull(t.conn, b[:]); err != nil {
			return nil, err
		}
		samples = append(samples, time.Since(t0).Seconds())
	}
	return samples, nil
}

// stream sends size bytes from a to b on a new connection.
func (t *netTopology) stream(size int) error {
	var c net.Conn
	err := inNetns(t.ns[0], func() (err error) {
		c, err = net.DialTimeout("tcp", netip.AddrPortFrom(t.addrB, 7000).String(), 5*time.Second)
		return err
	})
	if err != nil {
		return err
	}
	defer c.Close()
	buf := make([]byte, 1<<20)
	buf[0] = 's'
	for sent := 0; sent < size; sent += len(buf) {
		if _, err := c.Write(buf); err != nil {
			return err
		}
	}
	// Closed and acknowledged: the receiver has it all.
	c.(*net.TCPConn).CloseWrite()
	_, err = io.Copy(io.Discard, c)
	return err
}
