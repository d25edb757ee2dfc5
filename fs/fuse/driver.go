package fuse

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/acetate/acetate/fs"
	"github.com/acetate/acetate/internal/daemon"
	"golang.org/x/sys/unix"
)

// Driver is the fuse union driver. Every fuse mount of a store is served
// by one background process, the store's FUSE server, which the first
// mount starts by re-executing the current binary (whose main must call
// ServeIfRequested first) and which exits when the last mount is gone.
//
// Mount opens /dev/fuse and mounts the connection at the target itself,
// in the caller's mount namespace, then hands the descriptor to the
// server over the unix socket fuse.sock in the store root (SCM_RIGHTS),
// with the stack and upper directory to serve; it returns once the server
// has answered the kernel's INIT. The caller mounts rather than the
// server because the mount must land in the caller's mount namespace (the
// server keeps the one of the command that started it), and because the
// caller sees a bad target at once, without the server resolving a path.
//
// A killed server takes its connections with it: the kernel aborts a
// FUSE connection when its last descriptor closes and cannot give it to
// a new server, so the mounts answer ENOTCONN until they are unmounted
// and mounted again. Mount does that for a dead mount at its target, and
// starts a new server.
type Driver struct {
	// Options apply to every mount this driver makes.
	Options ServeOptions
}

var _ fs.Driver = (*Driver)(nil)

// Name implements fs.Driver.
func (*Driver) Name() string { return "fuse" }

// readyMessage is what a server writes once a mount is live; anything
// else is an error message.
const readyMessage = "ready"

// Mount implements fs.Driver: it returns once the mount at s.Target is
// live, served by the store's server. A stale mount at the target (its
// server killed) is cleaned up first.
func (d *Driver) Mount(ctx context.Context, s fs.Spec) error {
	req, err := requestFor(s, d.Options)
	if err != nil {
		return err
	}
	if stale(req.Target) {
		if err := unix.Unmount(req.Target, unix.MNT_DETACH); err != nil {
			return fmt.Errorf("fuse mount: clean stale mount %s: %w", req.Target, err)
		}
	}
	fd, err := unix.Open("/dev/fuse", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("fuse mount %s: %w", req.Target, err)
	}
	defer unix.Close(fd)
	if err := unix.Mount("acetate", req.Target, "fuse.acetate", mountFlags(req.Options), mountData(fd)); err != nil {
		return fmt.Errorf("fuse mount %s: %w", req.Target, err)
	}
	if err := askServer(ctx, s.Store.Root(), req, fd); err != nil {
		unix.Unmount(req.Target, unix.MNT_DETACH)
		return fmt.Errorf("fuse mount %s: %w", req.Target, err)
	}
	return nil
}

// askServer sends req with the connection fd to the server of the store
// at root, starting one if none listens, and waits for its answer.
func askServer(ctx context.Context, root string, req *mountRequest, fd int) error {
	dir, err := daemon.OpenDir(root)
	if err != nil {
		return err
	}
	defer unix.Close(dir)
	lock, err := daemon.Lock(dir, serverLock)
	if err != nil {
		return err
	}
	defer unix.Close(lock)
	c, err := daemon.Dial(dir, serverSocket)
	if err != nil {
		if err := startStoreServer(ctx, root); err != nil {
			return fmt.Errorf("start the store's fuse server: %w", err)
		}
		if c, err = daemon.Dial(dir, serverSocket); err != nil {
			return err
		}
	}
	defer c.Close()
	raw, err := json.Marshal(req)
	if err != nil {
		return err
	}
	if _, _, err := c.WriteMsgUnix(raw, unix.UnixRights(fd), nil); err != nil {
		return fmt.Errorf("send to the fuse server: %w", err)
	}
	deadline := time.Now().Add(daemon.StartTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c.SetReadDeadline(deadline)
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		return fmt.Errorf("fuse server's answer: %w", err)
	}
	if msg := string(buf[:n]); msg != readyMessage {
		return errors.New(msg)
	}
	return nil
}

// startStoreServer starts the server of the store at root in a session of
// its own, and returns once it listens. The caller holds serverLock.
func startStoreServer(ctx context.Context, root string) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own binary: %w", err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), storeServerEnv+"="+root)
	cmd.Dir = "/"
	return daemon.Start(ctx, cmd)
}

// ServerPid returns the pid of the FUSE server of the store at root, or an
// error when none runs.
func ServerPid(root string) (int, error) {
	dir, err := daemon.OpenDir(root)
	if err != nil {
		return 0, err
	}
	defer unix.Close(dir)
	c, err := daemon.Dial(dir, serverSocket)
	if err != nil {
		return 0, fmt.Errorf("fuse server of %s: %w", root, err)
	}
	defer c.Close()
	cred, err := daemon.PeerCred(c)
	if err != nil {
		return 0, fmt.Errorf("fuse server of %s: %w", root, err)
	}
	return int(cred.Pid), nil
}

// requestFor is the request for a mount of s with options o.
func requestFor(s fs.Spec, o ServeOptions) (*mountRequest, error) {
	if s.Store == nil {
		return nil, errors.New("fuse mount: spec has no store")
	}
	if len(s.Layers) == 0 {
		return nil, errors.New("fuse mount: spec has no layers")
	}
	o.ReadOnly = o.ReadOnly || s.ReadOnly
	// As the overlay driver's: a set-uid binary that container root made
	// must not make a host user who reaches the mount point root; the
	// runtime's own mount of the root, inside the container, honours it.
	o.NoSuid = true
	req := &mountRequest{Layers: s.Layers, Options: o}
	for _, p := range []struct {
		name string
		src  string
		dst  *string
	}{{"upper", s.Upper, &req.Upper}, {"work", s.Work, &req.Work}, {"target", s.Target, &req.Target}} {
		abs, err := filepath.Abs(p.src)
		if err != nil || p.src == "" {
			return nil, fmt.Errorf("fuse mount: %s directory %q: not a valid path", p.name, p.src)
		}
		if _, err := os.Lstat(abs); err != nil && !stale(abs) {
			return nil, fmt.Errorf("fuse mount: %s directory: %w", p.name, err)
		}
		*p.dst = abs
	}
	return req, nil
}

// ServeIfRequested turns this process into the FUSE server of a store when
// the driver re-executed it: it serves the store's mounts until none is
// left, and exits. Otherwise it returns at once. Call it first thing in
// main (and in TestMain of tests that mount).
func ServeIfRequested() {
	root, ok := os.LookupEnv(storeServerEnv)
	if !ok {
		return
	}
	os.Unsetenv(storeServerEnv)
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err == nil {
		unix.Dup2(int(devnull.Fd()), 0)
		unix.Dup2(int(devnull.Fd()), 1)
		unix.Dup2(int(devnull.Fd()), 2)
		devnull.Close()
	}
	serveStore(root, daemon.ReportReady)
}

// stale reports whether p is a FUSE mount whose server is gone. It asks
// statfs, which the kernel never answers from its caches.
func stale(p string) bool {
	var st unix.Statfs_t
	return errors.Is(unix.Statfs(p, &st), unix.ENOTCONN)
}

// Unmount implements fs.Driver. The server exits once the kernel lets go
// of the mount. A stale mount (its server killed) is detached.
func (*Driver) Unmount(target string) error {
	if stale(target) {
		if err := unix.Unmount(target, unix.MNT_DETACH); err != nil {
			return fmt.Errorf("fuse unmount %s: %w", target, err)
		}
		return nil
	}
	if err := unix.Unmount(target, 0); err != nil {
		return fmt.Errorf("fuse unmount %s: %w", target, err)
	}
	return nil
}
