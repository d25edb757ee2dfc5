package launch

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/acetate/acetate/fs/container"
	"github.com/acetate/acetate/internal/beneath"
	"github.com/acetate/acetate/runtime"
	"github.com/acetate/acetate/runtime/network"
	"golang.org/x/sys/unix"
)

// NetworkBridge is the network mode of a container with an address of its
// own on a bridge network: "bridge" for network.DefaultNetwork,
// "bridge=NAME" for another (see package runtime/network).
const NetworkBridge = "bridge"

// BridgeNetwork returns the network a network mode names, and whether it
// is a bridge mode at all.
func BridgeNetwork(mode string) (string, bool) {
	if mode == NetworkBridge {
		return network.DefaultNetwork, true
	}
	name, ok := strings.CutPrefix(mode, NetworkBridge+"=")
	return name, ok && name != ""
}

// CheckNetwork checks the network settings of a run: the mode, the
// address and the published ports (which need a bridge).
func CheckNetwork(mode, ip string, publish []string) error {
	_, bridged := BridgeNetwork(mode)
	switch {
	case mode == "" || mode == runtime.NetworkNone || mode == runtime.NetworkHost || bridged:
	default:
		return fmt.Errorf("network %q: want none, host, bridge or bridge=NAME", mode)
	}
	if !bridged && (ip != "" || len(publish) > 0) {
		return fmt.Errorf("an address (--ip) and published ports (-p) need --net bridge[=NAME]")
	}
	if _, err := parseAddr(ip); err != nil {
		return err
	}
	_, err := parsePorts(publish)
	return err
}

func parseAddr(ip string) (netip.Addr, error) {
	if ip == "" {
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(ip)
	if err != nil || !a.Is4() {
		return a, fmt.Errorf("address %q is not an IPv4 address", ip)
	}
	return a, nil
}

func parsePorts(publish []string) ([]network.Port, error) {
	var ports []network.Port
	for _, s := range publish {
		p, err := network.ParsePort(s)
		if err != nil {
			return nil, err
		}
		ports = append(ports, p)
	}
	return ports, nil
}

// Networks returns the networks of the launcher's store.
func (l *Launcher) Networks() *network.Store { return l.nets }

func newNetworks(m *container.Manager) *network.Store {
	s := network.Open(m.StoreRoot())
	s.Exists = func(name string) bool {
		_, err := m.Get(name)
		return !errors.Is(err, container.ErrNotFound)
	}
	return s
}

// netnsPath is the file a bridged container's network namespace is bound
// on, in its run directory: it outlives a restart of the init.
func (l *Launcher) netnsPath(name string) string { return filepath.Join(l.m.RunDir(name), "netns") }

// attach gives a container on a bridge network its network namespace,
// address, routes and ports (network.Store.Attach), and spec the
// namespace to join and the network's hosts and resolv.conf to bind. It
// does nothing for another network mode.
func (l *Launcher) attach(c *container.Container, o Options, s *runtime.Spec) error {
	netName, ok := BridgeNetwork(o.Network)
	if !ok {
		return nil
	}
	addr, err := parseAddr(o.IP)
	if err != nil {
		return err
	}
	ports, err := parsePorts(o.Publish)
	if err != nil {
		return err
	}
	ep, err := l.nets.Attach(network.AttachOptions{Network: netName, Container: c.Name, Hostname: s.Hostname,
		Addr: addr, Publish: ports, NetNS: l.netnsPath(c.Name)})
	if err != nil {
		return err
	}
	s.Network, s.NetNS = runtime.NetworkNone, ep.NetNS
	s.EtcFiles = map[string]string{"/etc/hosts": ep.Hosts, "/etc/resolv.conf": ep.ResolvConf}
	for path := range s.EtcFiles {
		if err := touchInRoot(c.Mount.Target, path); err != nil {
			l.nets.Detach(c.Name, ep.NetNS)
			return err
		}
	}
	return nil
}

// touchInRoot makes the empty file path in the container's root when the
// root has its directory and not the file (Debian's minbase has no
// /etc/hosts), so that a file can be bound over it. The path resolves
// inside the root: a container's link never makes a host file.
func touchInRoot(rootfs, path string) error {
	root, err := unix.Open(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open root %s: %w", rootfs, err)
	}
	defer unix.Close(root)
	at, err := beneath.ResolveInRoot(root, path)
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
		return nil // no /etc: the container chose so
	}
	if err != nil {
		return fmt.Errorf("container's %s: %w", path, err)
	}
	defer at.Close()
	f, err := at.Open(unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY, 0o644)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("container's %s: %w", path, err)
	}
	return f.Close()
}

// detach undoes the attach of container name, if it has a network
// namespace: nothing of an attach outlives its namespace file, which goes
// last.
func (l *Launcher) detach(name string) error {
	ns := l.netnsPath(name)
	if _, err := os.Lstat(ns); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return l.nets.Detach(name, ns)
}

// Release detaches container name and frees its addresses: it is being
// removed.
func (l *Launcher) Release(name string) error {
	return l.nets.Release(name, l.netnsPath(name))
}

// CheckSettings says why container name's saved network settings s could
// not be attached, or nil: see network.Store.Check. create and set call
// it, so that a bad --ip or network is refused before it is kept.
func (l *Launcher) CheckSettings(name string, s container.Settings) error {
	netName, bridged := BridgeNetwork(s.Network)
	if !bridged {
		return nil
	}
	addr, err := parseAddr(s.IP)
	if err != nil {
		return err
	}
	return l.nets.Check(netName, name, addr)
}
