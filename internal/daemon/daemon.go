// Package daemon is the plumbing shared by acetate's background servers: the
// store's FUSE server (package fs/fuse) and its container supervisor
// (package runtime). Each is one process per store, started on demand by
// its first client (the binary re-executed, in a session of its own), that
// listens on a SOCK_SEQPACKET unix socket in the store's directory and
// exits when it serves nothing.
//
// A server's directory is reached through an O_PATH descriptor and its
// socket through /proc/self/fd/DIR/NAME, so that a store root of any
// length works (a socket path holds 107 bytes). A lock file beside the
// socket (flock) is held by a client from before it dials until the
// server has counted its request, and by the server while it decides to
// exit: no request reaches a server on its way out, and the next client
// finds no socket and starts a new one.
package daemon

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/acetate/acetate/internal/flock"
	"golang.org/x/sys/unix"
)

// OpenDir opens the directory path as an O_PATH descriptor.
func OpenDir(path string) (int, error) {
	fd, err := unix.Open(path, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open %s: %w", path, err)
	}
	return fd, nil
}

// Lock takes the lock file name in the directory dir is a descriptor of,
// waiting for it; closing the returned descriptor releases it. The file is
// never followed through a symbolic link.
func Lock(dir int, name string) (int, error) {
	fd, err := unix.Openat(dir, name, unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return -1, fmt.Errorf("server lock %s: %w", name, err)
	}
	err = flock.Lock(fd, unix.LOCK_EX)
	if err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("server lock %s: %w", name, err)
	}
	return fd, nil
}

// socketPath is the path of socket name in the directory dir is a
// descriptor of.
func socketPath(dir int, name string) string {
	return "/proc/self/fd/" + strconv.Itoa(dir) + "/" + name
}

// Dial connects to the socket name in the directory dir is a descriptor of.
func Dial(dir int, name string) (*net.UnixConn, error) {
	return net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: socketPath(dir, name), Net: "unixpacket"})
}

// Listen listens on the socket name in the directory dir is a descriptor
// of, replacing one a killed server left. Only the server's user can
// connect (mode 0600); Unlink removes the socket when the server exits.
func Listen(dir int, name string) (*net.UnixListener, error) {
	unix.Unlinkat(dir, name, 0) // left by a killed server
	old := unix.Umask(0o077)
	l, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: socketPath(dir, name), Net: "unixpacket"})
	unix.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", name, err)
	}
	l.SetUnlinkOnClose(false)
	return l, nil
}

// Unlink removes the socket name from the directory dir is a descriptor of.
func Unlink(dir int, name string) { unix.Unlinkat(dir, name, 0) }

// PeerCred returns the credentials of the process at the other end of c.
func PeerCred(c *net.UnixConn) (*unix.Ucred, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) { cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) }); err != nil {
		return nil, err
	}
	if credErr != nil {
		return nil, fmt.Errorf("peer credentials: %w", credErr)
	}
	return cred, nil
}

// CheckPeer refuses a client that is neither root nor the server's own
// user: a request makes a server act as root on what it names.
func CheckPeer(c *net.UnixConn) error {
	cred, err := PeerCred(c)
	if err != nil {
		return err
	}
	if cred.Uid != 0 && int(cred.Uid) != os.Geteuid() {
		return fmt.Errorf("uid %d may not use this server", cred.Uid)
	}
	return nil
}

// RaiseFileLimit lets the process hold as many descriptors as the kernel
// allows one (a server holds several for each container it serves).
func RaiseFileLimit() {
	b, err := os.ReadFile("/proc/sys/fs/nr_open")
	if err != nil {
		return
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return
	}
	unix.Setrlimit(unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: n, Max: n}) // best effort
}

// readyMessage is what a server reports once it serves; anything else is
// an error message.
const readyMessage = "ready"

// StartTimeout bounds the wait for a server's report. A binary that never
// becomes the server (its main does not hand over to it) never sends one.
const StartTimeout = 60 * time.Second

// Start starts cmd, a server that reports with ReportReady, in a session
// of its own, and returns once it reports that it serves. A server that
// reports an error, exits or stays silent is killed. The report comes on
// the server's descriptor 3, so cmd has no ExtraFiles.
func Start(ctx context.Context, cmd *exec.Cmd) error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	cmd.ExtraFiles = []*os.File{w}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setsid = true
	err = cmd.Start()
	w.Close()
	if err != nil {
		return fmt.Errorf("start server: %w", err)
	}
	msg, err := readReady(ctx, r)
	if err == nil && msg == readyMessage {
		return cmd.Process.Release()
	}
	cmd.Process.Kill()
	cmd.Wait()
	if err == nil {
		err = errors.New(msg)
	}
	return err
}

// ReportReady is how a server started by Start reports, once: err is nil
// when it serves, or why it failed.
func ReportReady(err error) {
	ready := os.NewFile(3, "ready")
	if err != nil {
		fmt.Fprintln(ready, err)
	} else {
		fmt.Fprintln(ready, readyMessage)
	}
	ready.Close()
}

// readReady reads the server's one message, or gives up when ctx ends or
// the server stays silent for StartTimeout.
func readReady(ctx context.Context, r *os.File) (string, error) {
	done := make(chan struct{})
	var msg []byte
	var err error
	go func() {
		msg, err = io.ReadAll(bufio.NewReader(r))
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return "", ctx.Err()
	case <-time.After(StartTimeout):
		return "", fmt.Errorf("the server did not report within %v (does the binary's main hand over to it first?)", StartTimeout)
	}
	if err != nil {
		return "", err
	}
	if len(msg) == 0 {
		return "", errors.New("server exited before it served")
	}
	return strings.TrimSpace(string(msg)), nil
}

// Server counts what a listening server serves (a request being handled,
// a mount, a container) and ends the process once nothing is left.
type Server struct {
	// Dir is an O_PATH descriptor of the server's directory, which holds
	// Socket and LockFile.
	Dir              int
	Socket, LockFile string
	// Log receives why the server could not exit when idle.
	Log *log.Logger

	mu     sync.Mutex
	active int
}

// Serve accepts connections on l for good: each is counted (Enter) and
// given to handle on a goroutine of its own, which calls Leave once what
// it serves ends. A server that nothing reaches within StartTimeout (its
// client died before asking) exits.
func (s *Server) Serve(l *net.UnixListener, handle func(*net.UnixConn)) {
	time.AfterFunc(StartTimeout, s.ExitIfIdle)
	for {
		c, err := l.AcceptUnix()
		if err != nil {
			s.Log.Printf("accept: %v", err)
			os.Exit(1)
		}
		s.Enter()
		go handle(c)
	}
}

// Enter counts one more thing served.
func (s *Server) Enter() {
	s.mu.Lock()
	s.active++
	s.mu.Unlock()
}

// Active is how many things are served.
func (s *Server) Active() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.active
}

// Leave ends one thing served; once none is left, the server exits.
func (s *Server) Leave() {
	s.mu.Lock()
	s.active--
	idle := s.active == 0
	s.mu.Unlock()
	if idle {
		go s.ExitIfIdle()
	}
}

// ExitIfIdle exits, removing the socket, when the server serves nothing.
// It holds the lock meanwhile: a client dials under it, so no request is
// on its way in, and the next client finds no socket and starts a server.
func (s *Server) ExitIfIdle() {
	lock, err := Lock(s.Dir, s.LockFile)
	if err != nil {
		s.Log.Printf("exit: %v", err)
		return
	}
	defer unix.Close(lock)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active == 0 {
		Unlink(s.Dir, s.Socket)
		os.Exit(0)
	}
}
