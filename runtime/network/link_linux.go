package network

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/acetate/acetate/internal/netnsthread"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// ensureBridge makes n's bridge with its gateway address when missing,
// and finishes one that a killed attach left half made (without its
// address, sysctls or up), and reports whether it made it. The bridge gets
// route_localnet (see the package doc) and the namespace IPv4 forwarding.
func ensureBridge(n Network) (made bool, err error) {
	// The bridge's own MAC: a bridge without one takes the lowest of its
	// ports', which changed the gateway's MAC under the containers as
	// others came and went, and their packets to the stale one were
	// dropped until ARP noticed (seconds).
	mac := macOf(n.Gateway)
	br, err := netlink.LinkByName(n.Bridge)
	if errors.As(err, new(netlink.LinkNotFoundError)) {
		if err = netlink.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: n.Bridge, HardwareAddr: mac}}); err == nil {
			made = true
			br, err = netlink.LinkByName(n.Bridge)
		}
	}
	if err == nil && !bytes.Equal(br.Attrs().HardwareAddr, mac) {
		err = netlink.LinkSetHardwareAddr(br, mac) // made by an earlier acetate
	}
	if err != nil {
		return false, fmt.Errorf("bridge %s of network %s: %w", n.Bridge, n.Name, err)
	}
	if !made && br.Attrs().Flags&net.FlagUp != 0 {
		return false, nil // finished: up is its last step
	}
	for _, gw := range n.addrs(n.Gateway) {
		if err := netlink.AddrReplace(br, gw); err != nil {
			return made, fmt.Errorf("address bridge %s: %w", n.Bridge, err)
		}
	}
	for file, value := range map[string]string{
		"/proc/sys/net/ipv4/conf/" + n.Bridge + "/route_localnet": "1",
		"/proc/sys/net/ipv4/ip_forward":                           "1",
	} {
		if err := os.WriteFile(file, []byte(value), 0); err != nil {
			return made, fmt.Errorf("bridge %s: %w", n.Bridge, err)
		}
	}
	if err := netlink.LinkSetUp(br); err != nil {
		return made, fmt.Errorf("bring bridge %s up: %w", n.Bridge, err)
	}
	return made, nil
}

// removeBridge deletes n's bridge, if there.
func removeBridge(n Network) error {
	return deleteLink(n.Bridge)
}

func deleteLink(name string) error {
	l, err := netlink.LinkByName(name)
	if err == nil {
		err = netlink.LinkDel(l)
	}
	if errors.As(err, new(netlink.LinkNotFoundError)) || errors.Is(err, unix.ENODEV) {
		return nil // gone, maybe with its namespace meanwhile
	}
	if err != nil {
		return fmt.Errorf("delete link %s: %w", name, err)
	}
	return nil
}

// deleteLinks deletes the links whose names begin with prefix.
func deleteLinks(prefix string) error {
	links, err := netlink.LinkList()
	for try := 0; errors.Is(err, netlink.ErrDumpInterrupted) && try < 10; try++ {
		links, err = netlink.LinkList() // links changed during the dump
	}
	if err != nil {
		return fmt.Errorf("list links: %w", err)
	}
	for _, l := range links {
		if strings.HasPrefix(l.Attrs().Name, prefix) {
			if err := deleteLink(l.Attrs().Name); err != nil {
				return err
			}
		}
	}
	return nil
}

func ipNet(a netip.Addr, p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(p.Bits(), a.BitLen())}
}

// addrs are the addresses of n that stand for its IPv4 address a: a in
// the subnet and, where the kernel has IPv6, its IPv6 address, usable at
// once (no duplicate address detection: the network's addresses are
// acetate's to give).
func (n Network) addrs(a netip.Addr) []*netlink.Addr {
	out := []*netlink.Addr{{IPNet: ipNet(a, n.Subnet)}}
	if a6 := n.Addr6(a); a6.IsValid() && haveIPv6() {
		out = append(out, &netlink.Addr{IPNet: ipNet(a6, n.Subnet6), Flags: unix.IFA_F_NODAD})
	}
	return out
}

// haveIPv6 reports whether the kernel has IPv6 (not booted with
// ipv6.disable=1).
var haveIPv6 = sync.OnceValue(func() bool {
	_, err := os.Stat("/proc/sys/net/ipv6")
	return err == nil
})

// macOf is the stable MAC of a container's eth0 or of a network's bridge
// (of its gateway address): locally administered, made of the address (as
// docker's 02:42:...).
func macOf(a netip.Addr) net.HardwareAddr {
	b := a.As4()
	return net.HardwareAddr{0x02, 0xac, b[0], b[1], b[2], b[3]}
}

// makeNetns makes a new network namespace and bind-mounts it on path (a
// new file), on a thread that then goes back to its own namespace (see
// package netnsthread: CI once found a detached container's veth still
// there two minutes on, its namespace kept by a thread left in it).
func makeNetns(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY|unix.O_CLOEXEC, 0o444)
	if err != nil {
		return fmt.Errorf("network namespace file: %w", err)
	}
	f.Close()
	err = netnsthread.Do(netnsthread.Unshare, func() error {
		src := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(src, path, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind network namespace on %s: %w", path, err)
		}
		return nil
	})
	if err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

// removeNetns unmounts and removes the namespace file path, if there.
func removeNetns(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount network namespace %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove network namespace %s: %w", path, err)
	}
	return nil
}

// plugVeth joins the namespace at nsPath to n's bridge: a veth pair whose
// host end, named veth, is up in the bridge and whose other end is made
// as eth0 in the namespace, with mac and addr, up, routed by default
// through the gateway; lo is brought up too.
func plugVeth(n Network, nsPath, veth string, addr netip.Addr) error {
	br, err := netlink.LinkByName(n.Bridge)
	if err != nil {
		return fmt.Errorf("bridge %s: %w", n.Bridge, err)
	}
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		return fmt.Errorf("network namespace %s: %w", nsPath, err)
	}
	defer ns.Close()
	v := &netlink.Veth{
		LinkAttrs: netlink.LinkAttrs{Name: veth, MasterIndex: br.Attrs().Index, Flags: net.FlagUp},
		PeerName:  "eth0", PeerHardwareAddr: macOf(addr), PeerNamespace: netlink.NsFd(ns),
	}
	if err := netlink.LinkAdd(v); err != nil {
		return fmt.Errorf("make veth %s: %w", veth, err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink in %s: %w", nsPath, err)
	}
	defer h.Close()
	for _, name := range []string{"lo", "eth0"} {
		l, err := h.LinkByName(name)
		if name == "eth0" {
			for _, a := range n.addrs(addr) {
				if err == nil {
					err = h.AddrAdd(l, a)
				}
			}
		}
		if err == nil {
			err = h.LinkSetUp(l)
		}
		if err != nil {
			return fmt.Errorf("set up %s in %s: %w", name, filepath.Base(nsPath), err)
		}
	}
	for _, gw := range []netip.Addr{n.Gateway, n.Addr6(n.Gateway)} {
		if !gw.IsValid() || (gw.Is6() && !haveIPv6()) {
			continue
		}
		if err := h.RouteAdd(&netlink.Route{Gw: gw.AsSlice()}); err != nil {
			return fmt.Errorf("default route via %s: %w", gw, err)
		}
	}
	return awaitUp(h, veth)
}

// awaitUp waits, at most a second, until the kernel has marked both ends
// of the veth up. It does so in the background (linkwatch): until then
// the container's eth0 drops what it sends and the bridge port forwards
// nothing, so the container's first packets would be lost and retried a
// second later.
func awaitUp(inner *netlink.Handle, veth string) error {
	outer, err := netlink.NewHandle()
	if err != nil {
		return err
	}
	defer outer.Close()
	deadline := time.Now().Add(time.Second)
	for _, c := range []struct {
		h    *netlink.Handle
		name string
	}{{inner, "eth0"}, {outer, veth}} {
		for {
			l, err := c.h.LinkByName(c.name)
			if err != nil {
				return fmt.Errorf("await %s up: %w", c.name, err)
			}
			if l.Attrs().OperState == netlink.OperUp {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s is not up after a second (state %s)", c.name, l.Attrs().OperState)
			}
			time.Sleep(50 * time.Microsecond)
		}
	}
	return nil
}

// routeOverlap refuses a subnet that overlaps a route of this namespace
// (the default route aside) that is not an acetate bridge's.
func routeOverlap(subnet netip.Prefix) error {
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	for try := 0; errors.Is(err, netlink.ErrDumpInterrupted) && try < 10; try++ {
		routes, err = netlink.RouteList(nil, netlink.FAMILY_V4) // routes changed during the dump
	}
	if err != nil {
		return fmt.Errorf("list routes: %w", err)
	}
	for _, r := range routes {
		if r.Dst == nil {
			continue
		}
		dst, ok := netip.AddrFromSlice(r.Dst.IP)
		ones, _ := r.Dst.Mask.Size()
		if !ok || !netip.PrefixFrom(dst.Unmap(), ones).Overlaps(subnet) || ones == 0 {
			continue
		}
		dev := fmt.Sprint(r.LinkIndex)
		if l, err := netlink.LinkByIndex(r.LinkIndex); err == nil {
			dev = l.Attrs().Name
		}
		return fmt.Errorf("%w: %s overlaps the route to %s on %s", ErrOverlap, subnet, r.Dst, dev)
	}
	return nil
}
