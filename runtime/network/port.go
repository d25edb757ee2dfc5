package network

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Port is a container port published on the host, as -p gives it.
type Port struct {
	// HostIP is the host address it is published on; zero for every
	// address of the host (127.0.0.1 included).
	HostIP   netip.Addr `json:"hostIP,omitzero"`
	HostPort uint16     `json:"hostPort"`
	Port     uint16     `json:"port"`
	// Proto is "tcp" or "udp".
	Proto string `json:"proto"`
}

// ParsePort parses "[HOSTIP:]HOSTPORT:PORT[/tcp|udp]" (docker's -p).
func ParsePort(s string) (Port, error) {
	p := Port{Proto: "tcp"}
	bad := func(why string) (Port, error) {
		return Port{}, fmt.Errorf("%w: published port %q: %s (want [HOSTIP:]HOSTPORT:PORT[/tcp|udp])", ErrInvalid, s, why)
	}
	rest := s
	if i := strings.LastIndexByte(rest, '/'); i >= 0 {
		p.Proto = rest[i+1:]
		rest = rest[:i]
		if p.Proto != "tcp" && p.Proto != "udp" {
			return bad("protocol is not tcp or udp")
		}
	}
	i := strings.LastIndexByte(rest, ':')
	if i < 0 {
		return bad("no host port")
	}
	var err error
	if p.Port, err = parsePortNumber(rest[i+1:]); err != nil {
		return bad(err.Error())
	}
	rest = rest[:i]
	if i = strings.LastIndexByte(rest, ':'); i >= 0 {
		if p.HostIP, err = netip.ParseAddr(rest[:i]); err != nil || !p.HostIP.Is4() {
			return bad("host address is not an IPv4 address")
		}
		rest = rest[i+1:]
	}
	if p.HostPort, err = parsePortNumber(rest); err != nil {
		return bad(err.Error())
	}
	return p, nil
}

func parsePortNumber(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("port %q is not a number from 1 to 65535", s)
	}
	return uint16(n), nil
}

// String is the -p form of p.
func (p Port) String() string {
	s := fmt.Sprintf("%d:%d/%s", p.HostPort, p.Port, p.Proto)
	if p.HostIP.IsValid() {
		s = p.HostIP.String() + ":" + s
	}
	return s
}

// clashes reports whether p and o cannot both be published.
func (p Port) clashes(o Port) bool {
	return p.HostPort == o.HostPort && p.Proto == o.Proto &&
		(!p.HostIP.IsValid() || !o.HostIP.IsValid() || p.HostIP == o.HostIP)
}
