package network

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
)

// AttachOptions say how a container joins a network.
type AttachOptions struct {
	// Network is the network's name; "" is DefaultNetwork, made on
	// first use.
	Network string
	// Container names the container (its name in the hosts file and
	// the owner of its lease, veth and rules); Hostname is a second name
	// in the hosts file.
	Container, Hostname string
	// Addr is the address asked for (vzctl --ipadd, --ip); zero keeps
	// the container's lease, or takes the lowest free address.
	Addr netip.Addr
	// Publish are the ports published on the host.
	Publish []Port
	// NetNS is the file the container's new network namespace is bound
	// on; the launcher's init joins it.
	NetNS string
}

// Endpoint is a container attached to a network.
type Endpoint struct {
	Network Network
	// Addr and Addr6 are its IPv4 and IPv6 addresses (Addr6 zero when
	// the network has no IPv6).
	Addr, Addr6 netip.Addr
	MAC         net.HardwareAddr
	// Veth is the host end of the container's veth pair.
	Veth  string
	NetNS string
	// Hosts and ResolvConf are the files to bind over the container's
	// /etc/hosts and /etc/resolv.conf.
	Hosts, ResolvConf string
}

// vethPrefix begins the name of the host end of each of container's
// veth pairs, so that a leftover is found again (see "Crash recovery"):
// "acv" and 8 hex digits of a hash of the store and the container. Each
// attach adds 4 random ones: the veth of the previous attach may still be
// there, being freed with its namespace in the background.
func (s *Store) vethPrefix(container string) string { return "acv" + s.hash("container "+container, 8) }

func (s *Store) vethName(container string) string {
	var b [2]byte
	rand.Read(b[:])
	return s.vethPrefix(container) + hex.EncodeToString(b[:])
}

// Attach joins container o.Container to its network (see the package
// doc), first removing whatever a previous attach of it left (a crash,
// a container that ended without a stop). On error it leaves the
// container detached; a lease it took is kept until [Store.Release].
func (s *Store) Attach(o AttachOptions) (*Endpoint, error) {
	if o.Container == "" || o.NetNS == "" {
		return nil, fmt.Errorf("%w: attach needs a container and a namespace path", ErrInvalid)
	}
	if o.Network == "" {
		o.Network = DefaultNetwork
	}
	for i, p := range o.Publish {
		for _, q := range o.Publish[:i] {
			if p.clashes(q) {
				return nil, fmt.Errorf("%w: %s and %s", ErrPortUsed, q, p)
			}
		}
	}
	unlock, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	n, err := s.get(o.Network)
	if errors.Is(err, ErrNotFound) && o.Network == DefaultNetwork {
		n, err = s.create(DefaultNetwork, DefaultSubnet, netip.Addr{})
	}
	if err != nil {
		return nil, err
	}
	for _, p := range o.Publish {
		if by, err := publishedBy(p, o.Container); err != nil {
			return nil, err
		} else if by != "" {
			return nil, fmt.Errorf("%w: %s by container %s", ErrPortUsed, p, by)
		}
	}
	lease, err := s.lease(n, o)
	if err != nil {
		return nil, err
	}
	// What a previous attach left: a crash, or an end without a stop.
	if _, err := os.Lstat(o.NetNS); err == nil {
		if err := s.teardown(o.Container, o.NetNS, true); err != nil {
			return nil, err
		}
	}
	if err := s.ensureNetwork(n); err != nil {
		return nil, err
	}
	ep := &Endpoint{Network: n, Addr: lease.Addr, Addr6: n.Addr6(lease.Addr), MAC: macOf(lease.Addr), Veth: s.vethName(o.Container), NetNS: o.NetNS,
		Hosts: s.HostsFile(n.Name), ResolvConf: s.ResolvFile(n.Name)}
	err = makeNetns(o.NetNS)
	if err == nil {
		err = plugVeth(n, o.NetNS, ep.Veth, lease.Addr)
		if err == nil {
			err = addPortRules(o.Container, lease.Addr, o.Publish)
		}
		if err != nil {
			s.teardown(o.Container, o.NetNS, true)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("attach %s to network %s: %w", o.Container, n.Name, err)
	}
	return ep, nil
}

// ensureNetwork makes n's bridge and rules when missing (the first
// attach, a reboot, a flushed ruleset) and refreshes its resolv.conf.
func (s *Store) ensureNetwork(n Network) error {
	made, err := ensureBridge(n)
	if err != nil {
		return err
	}
	ok := false
	if !made {
		if ok, err = hasNetworkRules(n.Name); err != nil {
			return err
		}
	}
	if !ok {
		if err := addNetworkRules(n); err != nil {
			return err
		}
	}
	return s.writeResolvConf(n.Name)
}

// lease returns the lease container o.Container is to have on n: its own
// when it has one there and asks for no other address, else a new one
// (the requested address, or the lowest free). A lease it had on another
// network, or at another address, is freed.
func (s *Store) lease(n Network, o AttachOptions) (Lease, error) {
	if o.Addr.IsValid() {
		if err := hostAddr(n.Subnet, o.Addr); err != nil {
			return Lease{}, fmt.Errorf("%w: %v", ErrAddress, err)
		}
		if o.Addr == n.Gateway {
			return Lease{}, fmt.Errorf("%w: %s is the gateway of network %s", ErrAddress, o.Addr, n.Name)
		}
	}
	hostname := o.Hostname // the hosts file's second name, if any
	if hostname == o.Container {
		hostname = ""
	}
	nets, err := s.list()
	if err != nil {
		return Lease{}, err
	}
	var taken map[netip.Addr]string
	for _, m := range nets {
		ls, err := s.liveLeases(m.Name)
		if err != nil {
			return Lease{}, err
		}
		for _, l := range ls {
			if l.Container != o.Container || m.Name != n.Name || (o.Addr.IsValid() && o.Addr != l.Addr) {
				continue
			}
			if l.Hostname == hostname {
				return l, nil
			}
			l.Hostname = hostname // a new hostname, the same address
			if err := s.writeLease(n.Name, l); err != nil {
				return Lease{}, err
			}
			all, err := s.leases(n.Name)
			if err != nil {
				return Lease{}, err
			}
			return l, s.writeHosts(n.Name, all)
		}
		kept, err := s.dropLeases(m.Name, ls, func(l Lease) bool { return l.Container == o.Container })
		if err != nil {
			return Lease{}, err
		}
		if m.Name == n.Name {
			taken = make(map[netip.Addr]string, len(kept))
			for _, l := range kept {
				taken[l.Addr] = l.Container
			}
		}
	}
	l := Lease{Addr: o.Addr, Container: o.Container, Hostname: hostname}
	if by, ok := taken[o.Addr]; ok {
		return Lease{}, fmt.Errorf("%w: %s is taken by container %s", ErrAddress, o.Addr, by)
	}
	if !o.Addr.IsValid() {
		if l.Addr = freeAddr(n, taken); !l.Addr.IsValid() {
			return Lease{}, fmt.Errorf("%w: network %s (%s) has no free address", ErrAddress, n.Name, n.Subnet)
		}
	}
	if err := s.writeLease(n.Name, l); err != nil {
		return Lease{}, err
	}
	ls, err := s.leases(n.Name)
	if err != nil {
		return Lease{}, err
	}
	return l, s.writeHosts(n.Name, ls)
}

// freeAddr returns the lowest host address of n that is neither its
// gateway nor taken, or the zero Addr.
func freeAddr(n Network, taken map[netip.Addr]string) netip.Addr {
	last := broadcast(n.Subnet)
	for a := n.Subnet.Addr().Next(); a.Less(last); a = a.Next() {
		if _, ok := taken[a]; !ok && a != n.Gateway {
			return a
		}
	}
	return netip.Addr{}
}

// teardown removes what an attach of container made, in the reverse
// order: its rules, then its namespace file at nsPath, last, so that a
// namespace file gone means nothing is left but the veth, which the
// kernel deletes with the namespace, in the background. With syncVeth
// the veth is deleted first, at once: a leftover held by a process still
// in the namespace, or a remove that checks what is left. (Deleting a
// veth waits for RCU grace periods, some 20 ms; a stop need not wait.)
// Each step finds nothing to do when there is nothing.
func (s *Store) teardown(container, nsPath string, syncVeth bool) error {
	if err := deleteContainerRules(container); err != nil {
		return err
	}
	if syncVeth {
		if err := deleteLinks(s.vethPrefix(container)); err != nil {
			return err
		}
	}
	return removeNetns(nsPath)
}

// Detach undoes the Attach of container, whose namespace file is nsPath,
// keeping its lease; its veth goes with the namespace, in the
// background. Detaching a container that is not attached does nothing.
func (s *Store) Detach(container, nsPath string) error {
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	return s.teardown(container, nsPath, false)
}

// Release detaches container and frees its leases: the container is
// being removed.
func (s *Store) Release(container, nsPath string) error {
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	if err := s.teardown(container, nsPath, true); err != nil {
		return err
	}
	nets, err := s.list()
	if err != nil {
		return err
	}
	for _, n := range nets {
		ls, err := s.leases(n.Name)
		if err == nil {
			_, err = s.dropLeases(n.Name, ls, func(l Lease) bool { return l.Container == container })
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Find returns the network and lease of container, ok false when it has
// none.
func (s *Store) Find(container string) (n Network, l Lease, ok bool, err error) {
	nets, err := s.list()
	if err != nil {
		return n, l, false, err
	}
	for _, n := range nets {
		ls, err := s.leases(n.Name)
		if err != nil {
			return n, l, false, err
		}
		for _, l := range ls {
			if l.Container == container {
				return n, l, true, nil
			}
		}
	}
	return n, l, false, nil
}

// Check says why container could not have address a (zero: any) on
// network name at its next attach, or nil: an unknown network (the
// default one excepted, made on first use), an address outside the
// subnet, the gateway, or one another container holds. It changes
// nothing and takes no lock: an attach checks again.
func (s *Store) Check(name, container string, a netip.Addr) error {
	if name == "" {
		name = DefaultNetwork
	}
	n, err := s.get(name)
	if errors.Is(err, ErrNotFound) && name == DefaultNetwork {
		n = Network{Name: name, Subnet: DefaultSubnet}
		err = s.validate(&n)
	}
	if err != nil || !a.IsValid() {
		return err
	}
	if err := hostAddr(n.Subnet, a); err != nil {
		return fmt.Errorf("%w: %v", ErrAddress, err)
	}
	if a == n.Gateway {
		return fmt.Errorf("%w: %s is the gateway of network %s", ErrAddress, a, n.Name)
	}
	if _, err := os.Stat(s.netDir(name)); err != nil {
		return nil // the default network, not made yet
	}
	ls, err := s.leases(name)
	if err != nil {
		return err
	}
	for _, l := range ls {
		if l.Addr == a && l.Container != container && (s.Exists == nil || s.Exists(l.Container)) {
			return fmt.Errorf("%w: %s is taken by container %s", ErrAddress, a, l.Container)
		}
	}
	return nil
}
