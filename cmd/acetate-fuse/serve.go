package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/acetate/acetate/fs/fuse"
	"github.com/acetate/acetate/internal/daemon"
	"golang.org/x/sys/unix"
)

// childEnv marks the background server started by startBackground.
const childEnv = "ACETATE_FUSE_CHILD"

// startBackground runs this binary again with args and -f, as a
// background server with its standard streams on /dev/null, and returns
// once it reports that the mount is live.
func startBackground(args []string) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own binary: %w", err)
	}
	cmd := exec.Command(exe, append([]string{"-f"}, args...)...)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	return daemon.Start(context.Background(), cmd)
}

// serveIfChild serves when this process is the background server: it
// parses the command line again, mounts, reports, and exits once
// unmounted.
func serveIfChild() {
	if os.Getenv(childEnv) == "" {
		return
	}
	os.Unsetenv(childEnv)
	c, err := parseArgs(os.Args[1:], io.Discard)
	if err == nil {
		err = serve(c, func() { daemon.ReportReady(nil) })
	}
	if err != nil {
		daemon.ReportReady(err)
		os.Exit(1)
	}
	os.Exit(0)
}

// serve mounts c, calls ready once the mount is live, and serves in this
// process until the mount is gone; SIGINT and SIGTERM unmount.
func serve(c *config, ready func()) error {
	lower, err := fuse.NewDirLower(c.lower)
	if err != nil {
		return err
	}
	defer lower.Close()
	upper, work := c.upper, c.work
	if upper == "" {
		tmp, err := emptyUpper(c.lower[0])
		if err != nil {
			return fmt.Errorf("read-only mount: %w", err)
		}
		defer os.RemoveAll(tmp)
		upper, work = tmp, tmp
	}
	server, err := fuse.Serve(c.target, lower, upper, work, fuse.ServeOptions{ReadOnly: c.readOnly, NoSuid: c.noSuid, Debug: c.debug})
	if err != nil {
		return err
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sigs
		server.Unmount()
	}()
	ready()
	server.Wait()
	return nil
}

// emptyUpper makes the empty upper directory a read-only mount still
// needs. The mount's root shows the upper directory's attributes, so it
// gets those of the top layer's root.
func emptyUpper(top string) (string, error) {
	var st unix.Stat_t
	if err := unix.Stat(top, &st); err != nil {
		return "", fmt.Errorf("lowerdir %s: %w", top, err)
	}
	tmp, err := os.MkdirTemp("", "acetate-fuse-ro")
	if err != nil {
		return "", err
	}
	err = os.Chown(tmp, int(st.Uid), int(st.Gid))
	if err == nil {
		err = unix.Chmod(tmp, st.Mode&07777)
	}
	if err == nil {
		err = unix.UtimesNano(tmp, []unix.Timespec{st.Atim, st.Mtim})
	}
	if err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("empty upper directory: %w", err)
	}
	return tmp, nil
}
