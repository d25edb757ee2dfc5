package network

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
)

// writeHosts rewrites the hosts file of network name for leases.
func (s *Store) writeHosts(name string, leases []Lease) error {
	var b bytes.Buffer
	b.WriteString("# written by acetate for network " + name + "; containers by name\n")
	b.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	n, err := s.get(name)
	if err != nil {
		return err
	}
	for _, v6 := range []bool{false, true} {
		for _, l := range leases {
			a := l.Addr
			if v6 {
				if a = n.Addr6(a); !a.IsValid() {
					continue
				}
			}
			fmt.Fprintf(&b, "%s\t%s", a, l.Container)
			if l.Hostname != "" && l.Hostname != l.Container {
				b.WriteString(" " + l.Hostname)
			}
			b.WriteByte('\n')
		}
	}
	return rewriteInPlace(s.HostsFile(name), b.Bytes())
}

// rewriteInPlace replaces the content of file path, keeping its inode:
// containers have it bound over their own file, and a bind holds an
// inode, so a rename would leave them the old one. The new content goes
// in one write at offset 0, padded with newlines to the old length
// rather than truncated, so that a reader (the C library reads these
// files at every lookup) never sees part of an old line after a new one;
// blank lines mean nothing in hosts and resolv.conf.
func rewriteInPlace(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	old, err := io.ReadAll(f)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if bytes.Equal(bytes.TrimRight(old, "\n"), bytes.TrimRight(data, "\n")) {
		return nil
	}
	if pad := len(old) - len(data); pad > 0 {
		data = append(data, bytes.Repeat([]byte{'\n'}, pad)...)
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// hostResolvConf is the host's resolver configuration the networks'
// resolv.conf files are made from; systemdResolvConf is systemd-resolved's
// list of the upstream servers, used when the host's names only its stub
// resolver on 127.0.0.53, as docker does.
var (
	hostResolvConf    = "/etc/resolv.conf"
	systemdResolvConf = "/run/systemd/resolve/resolv.conf"
)

// writeResolvConf rewrites the resolv.conf of network name from the
// host's, less its loopback name servers: a server on the host's
// 127.0.0.53 is not there in a container's namespace.
func (s *Store) writeResolvConf(name string) error {
	conf, servers, err := resolvConf(hostResolvConf)
	if err == nil && servers == 0 {
		if c, n, err := resolvConf(systemdResolvConf); err == nil && n > 0 {
			conf = c
		}
	}
	if err != nil {
		return err
	}
	return rewriteInPlace(s.ResolvFile(name), conf)
}

// resolvConf returns the resolver configuration in file without its
// loopback name servers, and how many name servers it kept; a missing
// file is an empty configuration.
func resolvConf(file string) ([]byte, int, error) {
	var b bytes.Buffer
	b.WriteString("# written by acetate from the host's " + file + "\n")
	f, err := os.Open(file)
	if os.IsNotExist(err) {
		return b.Bytes(), 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read host resolver configuration: %w", err)
	}
	defer f.Close()
	servers := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		if fields[0] == "nameserver" {
			if a, err := netip.ParseAddr(fields[1]); err != nil || a.IsLoopback() {
				continue
			}
			servers++
		}
		b.WriteString(strings.Join(fields, " ") + "\n")
	}
	return b.Bytes(), servers, sc.Err()
}
