// Package console holds the consoles of a booted container and lets users
// attach to them, as lxc-console and machinectl login do.
//
// A booted container's /dev/console and /dev/ttyN are pseudo-terminals
// whose masters its supervisor holds for as long as the container runs
// (see package runtime). A [Server] reads every master all the time, so a
// container never blocks writing to its console, keeps the last output of
// each (the boot log, for whoever attaches later), copies the console's to
// a log, and serves a unix socket where one client at a time attaches to a
// pty: [Attach] connects, names the pty, prints the output kept so far, and
// relays both ways until the user types the detach key or the container
// ends.
//
// A getty vhangup()s its tty at start: the master then reads EIO until the
// slave is opened again. The server neither closes the master nor spins on
// it: it waits for the next wake-up of the master, as systemd-nspawn's pty
// forwarder does (the poller is edge-triggered).
//
// # The protocol
//
// The client sends the pty's name and a newline ("console\n", "tty1\n");
// the server answers "ok\n" or "error: REASON\n", then sends the kept
// output and relays: bytes from the client are typed on the pty, bytes
// from the pty go to the client.
package console

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// keep is how much of each pty's latest output a server keeps for a client
// that attaches later.
const keep = 64 << 10

// Server holds a container's pty masters and serves attachments to them.
type Server struct {
	ln   *net.UnixListener
	ptys map[string]*pty
	wg   sync.WaitGroup
}

// pty is one held master.
type pty struct {
	name   string
	master *os.File
	raw    syscall.RawConn
	// log receives the output, when not nil (the console's).
	log io.Writer

	mu     sync.Mutex
	kept   []byte
	client net.Conn
}

// Serve starts holding masters (by name: "console", "tty1", ...), listening
// on a new unix socket at path (removed first when it exists). The output
// of the "console" pty is also written to log, when not nil. Serve takes
// ownership of the masters.
func Serve(path string, masters map[string]*os.File, log io.Writer) (*Server, error) {
	os.Remove(path)
	addr, release, err := socketAddr(path)
	if err != nil {
		closeAll(masters)
		return nil, err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: addr, Net: "unix"})
	release()
	if err != nil {
		closeAll(masters)
		return nil, fmt.Errorf("failed to listen for console clients: %w", err)
	}
	s := &Server{ln: ln, ptys: map[string]*pty{}}
	for name, m := range masters {
		p, err := newPTY(name, m)
		if err != nil {
			s.Close()
			closeAll(masters)
			return nil, err
		}
		if name == "console" {
			p.log = log
		}
		s.ptys[name] = p
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			p.pump()
		}()
	}
	go s.accept()
	return s, nil
}

func closeAll(masters map[string]*os.File) {
	for _, m := range masters {
		m.Close()
	}
}

// newPTY holds master through a non-blocking duplicate, so that reads wait
// in the runtime's poller (an idle container costs no thread per pty), and
// closes master: a second *os.File of the same descriptor would close it
// under the other when the garbage collector finalizes it.
func newPTY(name string, master *os.File) (*pty, error) {
	fd, err := unix.FcntlInt(master.Fd(), unix.F_DUPFD_CLOEXEC, 3)
	if err == nil {
		master.Close()
		err = unix.SetNonblock(fd, true)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to hold pty %s: %w", name, err)
	}
	f := os.NewFile(uintptr(fd), name)
	raw, err := f.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("failed to hold pty %s: %w", name, err)
	}
	return &pty{name: name, master: f, raw: raw}, nil
}

// pump reads the master until it is closed, keeping the output and passing
// it to the log and the client.
func (p *pty) pump() {
	buf := make([]byte, 4096)
	for {
		var n int
		var rerr error
		err := p.raw.Read(func(fd uintptr) bool {
			n, rerr = unix.Read(int(fd), buf)
			// EAGAIN: nothing yet. EIO: no slave is open (a getty's
			// vhangup, or nobody opened it yet); wait for the next
			// wake-up rather than spin.
			return !errors.Is(rerr, unix.EAGAIN) && !errors.Is(rerr, unix.EIO)
		})
		if err != nil || rerr != nil || n <= 0 {
			return // closed by Close
		}
		p.output(buf[:n])
	}
}

// drain reads the master until it has nothing more (EAGAIN, or EIO once
// no slave is open) and passes what it read on.
func (p *pty) drain() {
	buf := make([]byte, 4096)
	p.raw.Control(func(fd uintptr) {
		for {
			n, err := unix.Read(int(fd), buf)
			if err != nil || n <= 0 {
				return
			}
			p.output(buf[:n])
		}
	})
}

// output keeps b and passes it on.
func (p *pty) output(b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.kept = append(p.kept, b...)
	if len(p.kept) > keep {
		p.kept = append(p.kept[:0], p.kept[len(p.kept)-keep:]...)
	}
	if p.log != nil {
		p.log.Write(b)
	}
	if p.client != nil {
		if _, err := p.client.Write(b); err != nil {
			p.client.Close()
			p.client = nil
		}
	}
}

func (s *Server) accept() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		go s.attach(c)
	}
}

// attach serves one client: its request, then its input.
func (s *Server) attach(c net.Conn) {
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		c.Close()
		return
	}
	name := strings.TrimSpace(line)
	p, ok := s.ptys[name]
	if !ok {
		fmt.Fprintf(c, "error: no pty %q (have %s)\n", name, strings.Join(s.names(), ", "))
		c.Close()
		return
	}
	p.mu.Lock()
	if p.client != nil {
		p.mu.Unlock()
		fmt.Fprintf(c, "error: %s is attached by another client\n", name)
		c.Close()
		return
	}
	_, err = fmt.Fprintf(c, "ok\n")
	if err == nil {
		_, err = c.Write(p.kept)
	}
	if err != nil {
		p.mu.Unlock()
		c.Close()
		return
	}
	p.client = c
	p.mu.Unlock()
	io.Copy(p.master, r)
	p.mu.Lock()
	if p.client == c {
		p.client = nil
	}
	p.mu.Unlock()
	c.Close()
}

func (s *Server) names() []string {
	out := slices.Collect(maps.Keys(s.ptys))
	slices.Sort(out)
	return out
}

// Close stops serving, passes on what the ptys still hold (the last lines
// of a shutdown, written just before the container ended, which the
// pumps may not have read yet), disconnects the client and closes the
// masters.
func (s *Server) Close() {
	s.ln.Close()
	for _, p := range s.ptys {
		p.drain()
		p.master.Close()
		p.mu.Lock()
		if p.client != nil {
			p.client.Close()
			p.client = nil
		}
		p.mu.Unlock()
	}
	s.wg.Wait()
}

// maxSocketPath is the longest path a unix socket address holds (108 bytes
// with its NUL).
const maxSocketPath = 107

// socketAddr returns an address for the socket at path that fits a unix
// socket address: path itself, or, for a longer one (a store deep in the
// file system), the name in its directory reached through a descriptor of
// that directory (/proc/self/fd/N/NAME), valid until release is called.
func socketAddr(path string) (addr string, release func(), err error) {
	if len(path) <= maxSocketPath {
		return path, func() {}, nil
	}
	dir, err := os.Open(filepath.Dir(path))
	if err != nil {
		return "", nil, fmt.Errorf("failed to reach the console socket's directory: %w", err)
	}
	return fmt.Sprintf("/proc/self/fd/%d/%s", dir.Fd(), filepath.Base(path)), func() { dir.Close() }, nil
}
