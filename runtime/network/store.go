package network

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/acetate/acetate/internal/atomicfile"
	"github.com/acetate/acetate/internal/flock"
	"golang.org/x/sys/unix"
)

// DefaultNetwork is the network of "--net bridge", made on first use with
// DefaultSubnet and bridge DefaultBridge unless created before.
const (
	DefaultNetwork = "acetate"
	DefaultBridge  = "acetate0"
)

// DefaultSubnet is the default network's subnet, podman's.
var DefaultSubnet = netip.MustParsePrefix("10.88.0.0/16")

// Errors wrapped by the Store's refusals.
var (
	ErrNotFound = errors.New("no such network")
	ErrExists   = errors.New("network already exists")
	ErrInUse    = errors.New("network is in use")
	ErrOverlap  = errors.New("subnet overlaps")
	ErrAddress  = errors.New("address not available")
	ErrInvalid  = errors.New("invalid network setting")
	ErrPortUsed = errors.New("host port already published")
)

// Network is a bridge network's configuration (config.json).
type Network struct {
	Name    string       `json:"name"`
	Subnet  netip.Prefix `json:"subnet"`
	Gateway netip.Addr   `json:"gateway"`
	// Subnet6 is the network's IPv6 prefix, a /64 of the unique local
	// fd00::/8 whose global ID is a hash of the store and name (RFC
	// 4193's shape); zero when made without one. A container's IPv6
	// address is this prefix and the host part of its IPv4 address
	// (Addr6), the gateway's too. IPv6 is on the link only: no route out,
	// no published ports.
	Subnet6 netip.Prefix `json:"subnet6,omitzero"`
	// Bridge is the bridge interface: DefaultBridge for DefaultNetwork,
	// "acbr-" and a hash of the store and name for the others.
	Bridge  string    `json:"bridge"`
	Created time.Time `json:"created"`
}

// Lease is one container's address on a network.
type Lease struct {
	Addr      netip.Addr `json:"-"`
	Container string     `json:"container"`
	// Hostname is a second name the container has in the hosts file
	// when it differs from its container name.
	Hostname string `json:"hostname,omitempty"`
}

// Store keeps the networks of one acetate store.
type Store struct {
	dir string
	// Exists reports whether a container still exists: leases of the
	// containers it denies are freed when an address is allocated (they
	// were left by a remove that was killed). Nil keeps every lease.
	Exists func(container string) bool
}

// Open returns the networks of the store at root (<root>/networks). It
// touches nothing until used.
func Open(root string) *Store { return &Store{dir: filepath.Join(root, "networks")} }

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$`)

// lock takes the store's network lock, creating the directory on first
// use, and returns its release.
func (s *Store) lock() (func(), error) {
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return nil, fmt.Errorf("network store: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(s.dir, "lock"), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("network store: %w", err)
	}
	err = flock.Lock(int(f.Fd()), unix.LOCK_EX)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("network store lock: %w", err)
	}
	return func() { f.Close() }, nil
}

func (s *Store) netDir(name string) string { return filepath.Join(s.dir, name) }

// HostsFile and ResolvFile are the files of network name that its
// containers see as /etc/hosts and /etc/resolv.conf.
func (s *Store) HostsFile(name string) string  { return filepath.Join(s.netDir(name), "hosts") }
func (s *Store) ResolvFile(name string) string { return filepath.Join(s.netDir(name), "resolv.conf") }

// hash returns n hex digits naming key within this store.
func (s *Store) hash(key string, n int) string {
	h := sha256.Sum256([]byte(s.dir + "\x00" + key))
	return hex.EncodeToString(h[:])[:n]
}

// Create makes network name with subnet (IPv4, no host bits, at most /30)
// and gateway (zero: the subnet's first address). It refuses a bad or
// taken name and a subnet that overlaps another network of the store or
// a route of the host. The bridge is made when a container first attaches.
func (s *Store) Create(name string, subnet netip.Prefix, gateway netip.Addr) (Network, error) {
	unlock, err := s.lock()
	if err != nil {
		return Network{}, err
	}
	defer unlock()
	return s.create(name, subnet, gateway)
}

func (s *Store) create(name string, subnet netip.Prefix, gateway netip.Addr) (Network, error) {
	n := Network{Name: name, Subnet: subnet, Gateway: gateway, Created: time.Now().UTC()}
	if err := s.validate(&n); err != nil {
		return n, err
	}
	if _, err := s.get(name); err == nil {
		return n, fmt.Errorf("%w: %s", ErrExists, name)
	} else if !errors.Is(err, ErrNotFound) {
		return n, err // a network there, unreadable: never replaced
	}
	nets, err := s.list()
	if err != nil {
		return n, err
	}
	for _, o := range nets {
		if o.Subnet.Overlaps(n.Subnet) {
			return n, fmt.Errorf("%w: %s overlaps network %s (%s)", ErrOverlap, n.Subnet, o.Name, o.Subnet)
		}
	}
	if err := routeOverlap(n.Subnet); err != nil {
		return n, err
	}
	dir := s.netDir(name)
	os.RemoveAll(dir) // a directory without config.json is a killed create's
	if err := os.MkdirAll(filepath.Join(dir, "leases"), 0o755); err != nil {
		return n, fmt.Errorf("create network %s: %w", name, err)
	}
	data, err := json.MarshalIndent(n, "", "  ")
	if err == nil {
		err = atomicfile.WriteFile(filepath.Join(dir, "config.json"), append(data, '\n'), true)
	}
	if err != nil {
		os.RemoveAll(dir)
		return n, fmt.Errorf("create network %s: %w", name, err)
	}
	return n, nil
}

// validate checks n and fills in its gateway and bridge.
func (s *Store) validate(n *Network) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
	}
	if !nameRE.MatchString(n.Name) {
		return bad("network name %q: want letters, digits, '_', '.', '-', at most 64, not starting with a punctuation mark", n.Name)
	}
	if !n.Subnet.IsValid() || !n.Subnet.Addr().Is4() {
		return bad("subnet %s: want an IPv4 CIDR such as 198.18.0.0/24", n.Subnet)
	}
	if n.Subnet.Masked() != n.Subnet {
		return bad("subnet %s has host bits set: did you mean %s?", n.Subnet, n.Subnet.Masked())
	}
	if n.Subnet.Bits() > 30 {
		return bad("subnet %s is too small: at most /30", n.Subnet)
	}
	if !n.Gateway.IsValid() {
		n.Gateway = n.Subnet.Addr().Next()
	}
	if err := hostAddr(n.Subnet, n.Gateway); err != nil {
		return bad("gateway: %v", err)
	}
	id, _ := hex.DecodeString(s.hash("ula "+n.Name, 10))
	n.Subnet6 = netip.PrefixFrom(netip.AddrFrom16([16]byte{0xfd, id[0], id[1], id[2], id[3], id[4]}), 64)
	n.Bridge = DefaultBridge
	if n.Name != DefaultNetwork {
		n.Bridge = "acbr-" + s.hash("network "+n.Name, 10)
	}
	return nil
}

// Addr6 is the IPv6 address of n that stands for its IPv4 address a:
// Subnet6 and a's host part; the zero Addr when n has no Subnet6.
func (n Network) Addr6(a netip.Addr) netip.Addr {
	if !n.Subnet6.IsValid() {
		return netip.Addr{}
	}
	b, base := n.Subnet6.Addr().As16(), n.Subnet.Addr().As4()
	host := binary.BigEndian.Uint32(a.AsSlice()) - binary.BigEndian.Uint32(base[:])
	binary.BigEndian.PutUint32(b[12:], host)
	return netip.AddrFrom16(b)
}

// hostAddr says why a is no host address of subnet, or nil.
func hostAddr(subnet netip.Prefix, a netip.Addr) error {
	switch {
	case !a.Is4() || !subnet.Contains(a):
		return fmt.Errorf("%s is outside the subnet %s", a, subnet)
	case a == subnet.Addr():
		return fmt.Errorf("%s is the subnet's network address", a)
	case a == broadcast(subnet):
		return fmt.Errorf("%s is the subnet's broadcast address", a)
	}
	return nil
}

func broadcast(p netip.Prefix) netip.Addr {
	b := p.Addr().As4()
	for i := p.Bits(); i < 32; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	return netip.AddrFrom4(b)
}

// Get returns network name.
func (s *Store) Get(name string) (Network, error) {
	return s.get(name)
}

func (s *Store) get(name string) (Network, error) {
	var n Network
	if !nameRE.MatchString(name) {
		return n, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	data, err := os.ReadFile(filepath.Join(s.netDir(name), "config.json"))
	if errors.Is(err, os.ErrNotExist) {
		return n, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	if err == nil {
		err = json.Unmarshal(data, &n)
	}
	if err != nil {
		return n, fmt.Errorf("network %s: %w", name, err)
	}
	return n, nil
}

// List returns the networks, by name.
func (s *Store) List() ([]Network, error) { return s.list() }

func (s *Store) list() ([]Network, error) {
	ents, err := os.ReadDir(s.dir)
	if errors.Is(err, os.ErrNotExist) {
		return []Network{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	nets := []Network{}
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		if strings.HasPrefix(e.Name(), ".removed-") { // a killed remove's
			os.RemoveAll(filepath.Join(s.dir, e.Name()))
			continue
		}
		n, err := s.get(e.Name())
		if errors.Is(err, ErrNotFound) {
			continue // a killed create's or remove's
		}
		if err != nil {
			return nil, err
		}
		nets = append(nets, n)
	}
	return nets, nil
}

// Leases returns the leases of network name, by address.
func (s *Store) Leases(name string) ([]Lease, error) {
	if _, err := s.get(name); err != nil {
		return nil, err
	}
	return s.leases(name)
}

// leases reads the lease files of network name, skipping temporary
// files (a killed writer's are removed by liveLeases).
func (s *Store) leases(name string) ([]Lease, error) {
	dir := filepath.Join(s.netDir(name), "leases")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("leases of network %s: %w", name, err)
	}
	ls := []Lease{}
	for _, e := range ents {
		a, err := netip.ParseAddr(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		l := Lease{Addr: a}
		if err == nil {
			err = json.Unmarshal(data, &l)
		}
		if err != nil {
			return nil, fmt.Errorf("lease %s of network %s: %w", a, name, err)
		}
		ls = append(ls, l)
	}
	sort.Slice(ls, func(i, j int) bool { return ls[i].Addr.Less(ls[j].Addr) })
	return ls, nil
}

func (s *Store) leasePath(network string, a netip.Addr) string {
	return filepath.Join(s.netDir(network), "leases", a.String())
}

func (s *Store) writeLease(network string, l Lease) error {
	data, err := json.Marshal(l)
	if err == nil {
		err = atomicfile.WriteFile(s.leasePath(network, l.Addr), append(data, '\n'), false)
	}
	if err != nil {
		return fmt.Errorf("lease %s on network %s: %w", l.Addr, network, err)
	}
	return nil
}

// Remove removes network name, its bridge and its rules. It refuses while
// a container holds an address on it.
func (s *Store) Remove(name string) error {
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	n, err := s.get(name)
	if err != nil {
		return err
	}
	ls, err := s.liveLeases(name)
	if err != nil {
		return err
	}
	if len(ls) > 0 {
		users := make([]string, len(ls))
		for i, l := range ls {
			users[i] = l.Container
		}
		return fmt.Errorf("%w: %s by %s (remove them, or set another network on them)", ErrInUse, name, strings.Join(users, ", "))
	}
	if err := removeBridge(n); err != nil {
		return err
	}
	if err := deleteNetworkRules(n.Name); err != nil {
		return err
	}
	// Renamed away first, so that a killed remove leaves no half network.
	tmp := filepath.Join(s.dir, fmt.Sprintf(".removed-%s-%d", name, os.Getpid()))
	if err := os.Rename(s.netDir(name), tmp); err != nil {
		return fmt.Errorf("remove network %s: %w", name, err)
	}
	return os.RemoveAll(tmp)
}

// liveLeases returns the leases of network name, freeing first those of
// containers that no longer exist, and the temporary files of killed
// writers. It runs under the lock, so no writer is live.
func (s *Store) liveLeases(name string) ([]Lease, error) {
	tmps, _ := filepath.Glob(filepath.Join(s.netDir(name), "leases", ".*"))
	for _, t := range tmps {
		os.Remove(t)
	}
	ls, err := s.leases(name)
	if err != nil || s.Exists == nil {
		return ls, err
	}
	return s.dropLeases(name, ls, func(l Lease) bool { return !s.Exists(l.Container) })
}

// dropLeases frees the leases of ls on network that drop selects,
// rewrites the network's hosts file when any went, and returns the
// others. It runs under the lock.
func (s *Store) dropLeases(network string, ls []Lease, drop func(Lease) bool) ([]Lease, error) {
	kept := make([]Lease, 0, len(ls))
	for _, l := range ls {
		if !drop(l) {
			kept = append(kept, l)
			continue
		}
		if err := os.Remove(s.leasePath(network, l.Addr)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("free lease %s of %s on network %s: %w", l.Addr, l.Container, network, err)
		}
	}
	if len(kept) != len(ls) {
		if err := s.writeHosts(network, kept); err != nil {
			return nil, err
		}
	}
	return kept, nil
}
