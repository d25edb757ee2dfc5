package main

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/acetate/acetate/runtime/network"
	"github.com/spf13/cobra"
)

func newNetworkCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "network",
		Short: "Manage bridge networks: containers with addresses of their own",
		Long: `A bridge network gives each container on it (create/set/run/start
--net bridge=NAME) an address of its own from the network's subnet (or
--ip ADDR), a veth on the network's bridge, a default route through the
gateway with outbound masquerade, published ports (-p), and /etc/hosts and
/etc/resolv.conf: containers on one network reach each other by name.
Network "acetate" (bridge acetate0, 10.88.0.0/16) is made on first use of
--net bridge unless created before. A container keeps its address across
restarts until acetate rm; network rm is refused while a container has one.`,
		Example: `  acetate network create lan --subnet 198.18.0.0/24
  acetate run --from debian:12 --net bridge=lan -p 8080:80 web -- ...
  acetate network ls
  acetate network inspect lan
  acetate network rm lan`,
	}
	cmd.AddCommand(newNetworkCreateCmd(a), newNetworkLsCmd(a), newNetworkInspectCmd(a), newNetworkRmCmd(a))
	return cmd
}

// networks opens the store's networks, through its launcher (which frees
// the addresses of removed containers).
func (a *app) networks() (*network.Store, error) {
	l, _, err := a.launcher()
	if err != nil {
		return nil, err
	}
	return l.Networks(), nil
}

// networkInfo is what create, ls and inspect show of a network.
type networkInfo struct {
	network.Network
	// Containers are the containers with an address on it.
	Containers []networkMember `json:"containers"`
}

type networkMember struct {
	Name    string     `json:"name"`
	Address netip.Addr `json:"address"`
}

func networkInfoOf(s *network.Store, n network.Network) (networkInfo, error) {
	ls, err := s.Leases(n.Name)
	if err != nil {
		return networkInfo{}, err
	}
	in := networkInfo{Network: n, Containers: []networkMember{}}
	for _, l := range ls {
		in.Containers = append(in.Containers, networkMember{l.Container, l.Addr})
	}
	return in, nil
}

func (in networkInfo) names() []string {
	var names []string
	for _, m := range in.Containers {
		names = append(names, m.Name)
	}
	return names
}

func newNetworkCreateCmd(a *app) *cobra.Command {
	var subnet, gateway string
	cmd := &cobra.Command{
		Use:   "create NAME --subnet CIDR [--gateway IP]",
		Short: "Create a bridge network",
		Long: `Create a bridge network with an IPv4 subnet; the gateway (the bridge's
address) is the subnet's first address unless --gateway says otherwise. A
subnet that overlaps another network or a route of the host is refused.
The bridge is made when a container first uses the network.`,
		Example: `  acetate network create lan --subnet 198.18.0.0/24
  acetate network create dmz --subnet 198.18.1.0/24 --gateway 198.18.1.254`,
		Args: exactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			p, err := netip.ParsePrefix(subnet)
			if err != nil {
				return usageError{fmt.Errorf("--subnet %q: give an IPv4 CIDR such as 198.18.0.0/24", subnet)}
			}
			var gw netip.Addr
			if gateway != "" {
				if gw, err = netip.ParseAddr(gateway); err != nil {
					return usageError{fmt.Errorf("--gateway %q: give an IPv4 address", gateway)}
				}
			}
			s, err := a.networks()
			if err != nil {
				return err
			}
			n, err := s.Create(args[0], p, gw)
			if errors.Is(err, network.ErrInvalid) {
				return usageError{err}
			}
			if err != nil {
				return err
			}
			return a.render(networkInfo{Network: n, Containers: []networkMember{}}, table{rows: [][]string{{n.Name}}})
		},
	}
	cmd.Flags().StringVar(&subnet, "subnet", "", "IPv4 subnet, e.g. 198.18.0.0/24 (required)")
	cmd.Flags().StringVar(&gateway, "gateway", "", "the bridge's address (default: the subnet's first)")
	cmd.MarkFlagRequired("subnet")
	return cmd
}

func newNetworkLsCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "ls",
		Short: "List networks with their subnet, bridge and containers",
		Example: `  acetate network ls
  acetate network ls --format json | jq -r '.[].name'`,
		Args: exactArgs(0),
		RunE: func(c *cobra.Command, args []string) error {
			s, err := a.networks()
			if err != nil {
				return err
			}
			nets, err := s.List()
			if err != nil {
				return err
			}
			out := []networkInfo{}
			t := table{header: []string{"NAME", "SUBNET", "GATEWAY", "BRIDGE", "CONTAINERS"}}
			for _, n := range nets {
				in, err := networkInfoOf(s, n)
				if err != nil {
					return err
				}
				out = append(out, in)
				t.rows = append(t.rows, []string{n.Name, n.Subnet.String(), n.Gateway.String(), n.Bridge, listOrDash(in.names())})
			}
			return a.render(out, t)
		},
	}
}

func newNetworkInspectCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "inspect NAME",
		Short:   "Show a network: subnet, gateway, bridge, and each container's address",
		Example: `  acetate network inspect lan --format json`,
		Args:    exactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			s, err := a.networks()
			if err != nil {
				return err
			}
			n, err := s.Get(args[0])
			if err != nil {
				return err
			}
			in, err := networkInfoOf(s, n)
			if err != nil {
				return err
			}
			rows := [][]string{{"name", n.Name}, {"subnet", n.Subnet.String()}, {"gateway", n.Gateway.String()},
				{"ipv6 subnet", n.Subnet6.String()},
				{"bridge", n.Bridge}, {"created", n.Created.Local().Format(time.DateTime)},
				{"hosts file", s.HostsFile(n.Name)}}
			for _, m := range in.Containers {
				rows = append(rows, []string{"container " + m.Name, m.Address.String()})
			}
			return a.render(in, table{header: []string{"FIELD", "VALUE"}, rows: rows})
		},
	}
}

func newNetworkRmCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "rm NAME...",
		Short:   "Remove networks and their bridges (refused while a container has an address on one)",
		Example: `  acetate rm web && acetate network rm lan`,
		Args:    minArgs(1, "at least one network NAME"),
		RunE: func(c *cobra.Command, args []string) error {
			s, err := a.networks()
			if err != nil {
				return err
			}
			for _, name := range args {
				if err := s.Remove(name); err != nil {
					return err
				}
			}
			return nil
		},
	}
}
