package network

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// The table and chains of acetate's rules (see the package doc).
var (
	table       = &nftables.Table{Name: "acetate", Family: nftables.TableFamilyIPv4}
	prerouting  = natChain("prerouting", nftables.ChainHookPrerouting, nftables.ChainPriorityNATDest)
	output      = natChain("output", nftables.ChainHookOutput, nftables.ChainPriorityNATDest)
	postrouting = natChain("postrouting", nftables.ChainHookPostrouting, nftables.ChainPriorityNATSource)
	guard       = &nftables.Chain{Name: "guard", Table: table, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityRaw}
	chains = []*nftables.Chain{prerouting, output, postrouting, guard}
)

func natChain(name string, hook *nftables.ChainHook, prio *nftables.ChainPriority) *nftables.Chain {
	return &nftables.Chain{Name: name, Table: table, Type: nftables.ChainTypeNAT, Hooknum: hook, Priority: prio}
}

// Rule comments: what each rule is for, so that it is found again after
// a crash.
func networkTag(network string) string     { return "net=" + network }
func containerTag(container string) string { return "ctr=" + container }

// addNetworkRules adds, in one transaction, acetate's table and chains if
// missing and the rules of network n, after deleting any it had.
func addNetworkRules(n Network) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	c.AddTable(table)
	for _, ch := range chains {
		c.AddChain(ch)
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables table %s: %w", table.Name, err)
	}
	if err := delTagged(c, networkTag(n.Name)); err != nil {
		return err
	}
	tag := userdata.AppendString(nil, userdata.TypeComment, networkTag(n.Name))
	subnet, loopback := matchPrefix(12, n.Subnet), matchPrefix(12, netip.MustParsePrefix("127.0.0.0/8"))
	masq := &expr.Masq{}
	for _, r := range []struct {
		chain *nftables.Chain
		exprs [][]expr.Any
	}{
		// Outbound: the subnet's traffic leaving by another interface.
		{postrouting, [][]expr.Any{subnet, matchIfname(expr.MetaKeyOIFNAME, expr.CmpOpNeq, n.Bridge), {masq}}},
		// The host's own 127.0.0.1 reaching a published port.
		{postrouting, [][]expr.Any{matchIfname(expr.MetaKeyOIFNAME, expr.CmpOpEq, n.Bridge), loopback, {masq}}},
		// A container reaching a published port of the network.
		{postrouting, [][]expr.Any{matchIfname(expr.MetaKeyOIFNAME, expr.CmpOpEq, n.Bridge), subnet, matchDNATed, {masq}}},
		// CVE-2020-8558: a container sending to 127.0.0.1 by the bridge,
		// where route_localnet would let it reach the host's loopback.
		{guard, [][]expr.Any{matchIfname(expr.MetaKeyIIFNAME, expr.CmpOpEq, n.Bridge),
			matchPrefix(16, netip.MustParsePrefix("127.0.0.0/8")), {&expr.Verdict{Kind: expr.VerdictDrop}}}},
	} {
		c.AddRule(&nftables.Rule{Table: table, Chain: r.chain, Exprs: concat(r.exprs), UserData: tag})
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables rules of network %s: %w", n.Name, err)
	}
	return nil
}

// hasNetworkRules reports whether network's rules are there (a flush of
// the host's ruleset removes them under a live bridge).
func hasNetworkRules(network string) (bool, error) {
	c, err := nftables.New()
	if err != nil {
		return false, fmt.Errorf("nftables: %w", err)
	}
	rules, err := c.GetRules(table, postrouting)
	if err != nil {
		return false, nil // no table, no chain
	}
	for _, r := range rules {
		if comment(r) == networkTag(network) {
			return true, nil
		}
	}
	return false, nil
}

// addPortRules publishes ports of the container at addr: a DNAT on the
// prerouting and the output hooks for each, tagged with the container.
func addPortRules(container string, addr netip.Addr, ports []Port) error {
	if len(ports) == 0 {
		return nil
	}
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	for _, p := range ports {
		var dst []expr.Any
		if p.HostIP.IsValid() {
			dst = matchPrefix(16, netip.PrefixFrom(p.HostIP, 32))
		} else {
			dst = []expr.Any{
				&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
			}
		}
		proto := byte(unix.IPPROTO_TCP)
		if p.Proto == "udp" {
			proto = unix.IPPROTO_UDP
		}
		a := addr.As4()
		exprs := concat([][]expr.Any{dst, {
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(p.HostPort)},
			&expr.Immediate{Register: 1, Data: a[:]},
			&expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(p.Port)},
			&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
		}})
		tag := userdata.AppendString(nil, userdata.TypeComment, containerTag(container)+" port="+p.String())
		for _, ch := range []*nftables.Chain{prerouting, output} {
			c.AddRule(&nftables.Rule{Table: table, Chain: ch, Exprs: exprs, UserData: tag})
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables rules of %s's published ports: %w", container, err)
	}
	return nil
}

// publishedBy returns the container publishing a port that clashes with
// p, or "".
func publishedBy(p Port, except string) (string, error) {
	c, err := nftables.New()
	if err != nil {
		return "", fmt.Errorf("nftables: %w", err)
	}
	rules, err := c.GetRules(table, prerouting)
	if err != nil {
		return "", nil // no table yet: nothing published
	}
	for _, r := range rules {
		ctr, spec, ok := strings.Cut(comment(r), " port=")
		ctr, isCtr := strings.CutPrefix(ctr, "ctr=")
		if !ok || !isCtr || ctr == except {
			continue
		}
		if o, err := ParsePort(spec); err == nil && o.clashes(p) {
			return ctr, nil
		}
	}
	return "", nil
}

// deleteContainerRules and deleteNetworkRules delete the rules of a
// container or a network; deleting the last network's deletes the table.
func deleteContainerRules(container string) error { return deleteRules(containerTag(container), false) }
func deleteNetworkRules(network string) error     { return deleteRules(networkTag(network), true) }

func deleteRules(tag string, dropEmptyTable bool) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	if t, err := c.ListTableOfFamily(table.Name, table.Family); err != nil || t == nil {
		return nil
	}
	if err := delTagged(c, tag); err != nil {
		return err
	}
	if !dropEmptyTable {
		return nil
	}
	for _, ch := range chains {
		if rules, err := c.GetRules(table, ch); err != nil || len(rules) > 0 {
			return nil
		}
	}
	c.DelTable(table)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: delete table %s: %w", table.Name, err)
	}
	return nil
}

// delTagged deletes every rule of acetate's chains whose comment is tag
// or starts with tag and a space.
func delTagged(c *nftables.Conn, tag string) error {
	n := 0
	for _, ch := range chains {
		rules, err := c.GetRules(table, ch)
		if err != nil {
			continue // no such chain
		}
		for _, r := range rules {
			if cm := comment(r); cm == tag || strings.HasPrefix(cm, tag+" ") {
				if err := c.DelRule(r); err != nil {
					return fmt.Errorf("nftables: delete rule %q: %w", cm, err)
				}
				n++
			}
		}
	}
	if n == 0 {
		return nil
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: delete rules %q: %w", tag, err)
	}
	return nil
}

func comment(r *nftables.Rule) string {
	s, _ := userdata.GetString(r.UserData, userdata.TypeComment)
	return s
}

// matchPrefix matches the IPv4 address at offset (12 source, 16
// destination) of the network header against p.
func matchPrefix(offset uint32, p netip.Prefix) []expr.Any {
	a, mask := p.Masked().Addr().As4(), binary.BigEndian.AppendUint32(nil, ^uint32(0)<<(32-p.Bits()))
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a[:]},
	}
}

// matchIfname matches the input or output interface name (key).
func matchIfname(key expr.MetaKey, op expr.CmpOp, name string) []expr.Any {
	data := make([]byte, unix.IFNAMSIZ)
	copy(data, name)
	return []expr.Any{&expr.Meta{Key: key, Register: 1}, &expr.Cmp{Op: op, Register: 1, Data: data}}
}

// ipsDstNAT is conntrack's IPS_DST_NAT status bit.
const ipsDstNAT = 1 << 5

// matchDNATed matches connections whose destination was NATed.
var matchDNATed = []expr.Any{
	&expr.Ct{Register: 1, Key: expr.CtKeySTATUS},
	&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
		Mask: binaryutil.NativeEndian.PutUint32(ipsDstNAT), Xor: make([]byte, 4)},
	&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
}

func concat(parts [][]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
