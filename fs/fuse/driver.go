package fuse

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/acetate/acetate/fs"
	"github.com/acetate/acetate/layers"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// Driver is the fuse union driver. Mount starts a background server by
// re-executing the current binary, whose main must call ServeIfRequested
// first; the server exits when the mount is unmounted.
type Driver struct {
	// Options are passed to every server this driver starts.
	Options ServeOptions
}

var _ fs.Driver = (*Driver)(nil)

// Name implements fs.Driver.
func (*Driver) Name() string { return "fuse" }

// serveEnv carries a serverConfig to the re-executed binary.
const serveEnv = "ACETATE_FUSE_SERVE"

// readyMessage is what the server writes on its readiness pipe once the
// mount is live; anything else is an error message.
const readyMessage = "ready"

// serverConfig is what the re-executed server needs to mount.
type serverConfig struct {
	Store   string
	Layers  []digest.Digest
	Upper   string
	Work    string
	Target  string
	Options ServeOptions
}

// Mount implements fs.Driver: it returns once the mount at s.Target is
// live, served by a background process. A stale mount at the target (its
// server killed) is cleaned up first.
func (d *Driver) Mount(ctx context.Context, s fs.Spec) error {
	cfg, err := configFor(s, d.Options)
	if err != nil {
		return err
	}
	if stale(cfg.Target) {
		if err := unix.Unmount(cfg.Target, unix.MNT_DETACH); err != nil {
			return fmt.Errorf("fuse mount: clean stale mount %s: %w", cfg.Target, err)
		}
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("fuse mount: %w", err)
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("fuse mount: find own binary: %w", err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), serveEnv+"="+string(raw))
	cmd.Dir = "/"
	if err := StartServer(ctx, cmd); err != nil {
		return fmt.Errorf("fuse mount %s: %w", cfg.Target, err)
	}
	return nil
}

// StartServer starts cmd, a server that reports with ReportReady, in a
// session of its own, and returns once it reports that its mount is live.
// A server that reports an error, exits or stays silent is killed. The
// readiness pipe is the server's descriptor 3, so cmd has no ExtraFiles.
func StartServer(ctx context.Context, cmd *exec.Cmd) error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
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

// ReportReady is how a server started by StartServer reports, once: err
// is nil when its mount is live, or why it failed.
func ReportReady(err error) {
	ready := os.NewFile(3, "ready")
	if err != nil {
		fmt.Fprintln(ready, err)
	} else {
		fmt.Fprintln(ready, readyMessage)
	}
	ready.Close()
}

// serverStartTimeout bounds the wait for a server's ready message. A
// binary that does not call ServeIfRequested never sends one.
const serverStartTimeout = 60 * time.Second

// readReady reads the server's one message, or gives up when ctx ends or
// the server stays silent for serverStartTimeout.
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
	case <-time.After(serverStartTimeout):
		return "", fmt.Errorf("the server did not report within %v (does the binary's main call fuse.ServeIfRequested first?)", serverStartTimeout)
	}
	if err != nil {
		return "", err
	}
	if len(msg) == 0 {
		return "", errors.New("server exited before the mount was live")
	}
	return strings.TrimSpace(string(msg)), nil
}

func configFor(s fs.Spec, o ServeOptions) (*serverConfig, error) {
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
	cfg := &serverConfig{Store: s.Store.Root(), Layers: s.Layers, Options: o}
	for _, p := range []struct {
		name string
		src  string
		dst  *string
	}{{"upper", s.Upper, &cfg.Upper}, {"work", s.Work, &cfg.Work}, {"target", s.Target, &cfg.Target}} {
		abs, err := filepath.Abs(p.src)
		if err != nil || p.src == "" {
			return nil, fmt.Errorf("fuse mount: %s directory %q: not a valid path", p.name, p.src)
		}
		if _, err := os.Lstat(abs); err != nil && !stale(abs) {
			return nil, fmt.Errorf("fuse mount: %s directory: %w", p.name, err)
		}
		*p.dst = abs
	}
	return cfg, nil
}

// ServeIfRequested turns this process into a fuse server when the driver
// re-executed it: it mounts, reports readiness to the driver, serves until
// unmounted, and exits. Otherwise it returns at once. Call it first thing
// in main (and in TestMain of tests that mount).
func ServeIfRequested() {
	raw, ok := os.LookupEnv(serveEnv)
	if !ok {
		return
	}
	os.Unsetenv(serveEnv)
	server, err := serveConfig(raw)
	ReportReady(err)
	if err != nil {
		os.Exit(1)
	}
	server.Wait()
	os.Exit(0)
}

func serveConfig(raw string) (interface{ Wait() }, error) {
	var cfg serverConfig
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		return nil, fmt.Errorf("fuse server: bad config: %w", err)
	}
	store, err := layers.Open(cfg.Store)
	if err != nil {
		return nil, err
	}
	lower, err := NewStoreLower(store, cfg.Layers)
	if err != nil {
		return nil, err
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err == nil && !cfg.Options.Debug {
		unix.Dup2(int(devnull.Fd()), 0)
		unix.Dup2(int(devnull.Fd()), 1)
		unix.Dup2(int(devnull.Fd()), 2)
	}
	return Serve(cfg.Target, lower, cfg.Upper, cfg.Work, cfg.Options)
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
