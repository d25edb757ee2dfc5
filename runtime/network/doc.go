// Package network gives containers addresses of their own: named bridge
// networks, address leases, a network namespace per container joined to
// its network's bridge by a veth pair, outbound masquerade, published
// ports, and the /etc/hosts and /etc/resolv.conf files containers see.
//
// # State
//
// Everything lives in plain files under the store root, in the shape of
// CNI's host-local IPAM, so that a human can read it and a crash leaves
// nothing half-said:
//
//	<root>/networks/lock                   flock(2) held by every change
//	<root>/networks/NAME/config.json       subnet, gateway, bridge
//	<root>/networks/NAME/leases/ADDR       {"container": ..., "hostname": ...}
//	<root>/networks/NAME/hosts             the network's /etc/hosts
//	<root>/networks/NAME/resolv.conf       the network's /etc/resolv.conf
//
// A lease is taken when a container first attaches and kept across stops
// and restarts (its address and MAC are stable), and freed by [Store.Release]
// when the container is removed. Files are replaced whole (rename), under
// the lock.
//
// # Attaching a container
//
// [Store.Attach] is CNI's bridge plugin as one short story: ensure the
// bridge (made on first use, with the gateway address, a MAC of its own
// that ports coming and going never change, and the network's nftables
// rules), take or reuse the lease, make a network namespace and
// bind-mount it on a file (the caller's NetNS path, which the launcher's
// init then joins with setns(2)), make a veth pair with its container end,
// eth0, made directly in that namespace, address it, bring lo and eth0 up,
// route by default through the gateway, and add the published ports'
// rules. [Store.Detach] undoes that, and [Store.Release] frees the lease as
// well.
//
// # Crash recovery
//
// Every object a container gets is found by its name: its veth host end
// begins with "acv" and a hash of the store and container name, its
// nftables rules carry the comment "ctr=NAME ...", its namespace file is
// the caller's path. An attach makes the namespace file first and the
// rules last; a detach removes the rules first and the namespace file
// last. A kill -9 at any point therefore leaves at most a namespace file
// and what came after it, which the next Attach of that container finds
// and removes first (Release and Remove too); an allocation also frees the
// leases of containers that no longer exist ([Store.Exists]). So nothing
// leaked blocks reuse.
//
// A stop does not wait for the veth to be deleted (a veth's deletion waits
// for RCU grace periods, some 20 ms): it goes with the container's
// namespace, which the kernel frees in the background, and the next attach
// names its veth anew (4 random hex digits after the hash).
//
// # Names
//
// Containers on one network find each other by container name (and
// hostname) through one hosts file per network, bound read-only over every
// member's /etc/hosts and rewritten in place whenever a lease is taken or
// freed. The C library reads /etc/hosts at every lookup, so a container
// started later resolves at once in every other, and no process runs per
// network: a DNS server on the gateway would be one more daemon to start,
// supervise, and forward outside names from, on the start path, for no
// gain on a single host. The file is rewritten in place (the binds hold
// its inode) with one write, padded with blank lines rather than shrunk,
// so that a reader never sees part of a line.
//
// # IPv6
//
// Each network also has an IPv6 /64 of the unique local fd00::/8, named
// after a hash of the store and the network ([Network.Subnet6]); a
// container's IPv6 address is that prefix and the host part of its IPv4
// address, so that one lease gives both, and both are in the hosts file.
// It is on the link only: containers of the network and the host reach
// each other over it; there is no IPv6 route out and no IPv6 published
// port (IPv6 forwarding is a host-wide switch that would change how the
// host itself takes router advertisements).
//
// # nftables
//
// Rules live in acetate's own table, "ip acetate", made with
// github.com/google/nftables (no nft or iptables binary): per network,
// masquerade of the subnet's traffic leaving by another interface (when
// the host has a route out), masquerade of traffic reaching a published
// port through a DNAT from the host's own 127.0.0.0/8 or from a container
// of the network, and a drop of packets from the bridge to 127.0.0.0/8;
// per published port, a DNAT on the prerouting hook (other machines,
// other containers) and on the output hook (the host itself, 127.0.0.1
// included), at priority -100.
//
// Reaching a container from 127.0.0.1 needs route_localnet on the bridge:
// without it the kernel refuses to route a packet with a loopback source
// out of a non-loopback interface, before the masquerade could rewrite it.
// It is set on acetate's bridge alone (as docker does without its userland
// proxy), never host-wide. The attack it opens, a container sending to
// 127.0.0.1 through the bridge to reach the host's loopback-only services
// (CVE-2020-8558), is closed by the per-network drop rule above.
// A userland proxy was the alternative: a process per published port,
// restarted with the container, and the clients' addresses lost.
//
// The host needs IPv4 forwarding for outbound traffic and published ports;
// making a bridge turns it on in the namespace acetate runs in, as docker
// and podman do. A host firewall whose forward chain drops by default
// drops containers' traffic too: nftables cannot override another table's
// drop.
//
// Bridges, addresses and rules are made in the network namespace of the
// calling process: tests run in one of their own.
package network
