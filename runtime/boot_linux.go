package runtime

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/acetate/acetate/runtime/console"
	"golang.org/x/sys/unix"
)

// bootTTYs is how many /dev/ttyN a booted sysvinit container gets: its
// inittab starts a getty on tty1 to tty6, which respawn in a loop when the
// device is missing. A systemd container gets none: in a container systemd
// starts a getty on the console only (getty@tty1 needs /dev/tty0).
const bootTTYs = 6

// initFlavor is the kind of init a root boots, which decides how it is asked
// to shut down.
type initFlavor int

const (
	initOther initFlavor = iota
	initSystemd
	initSysv
)

// detectInit tells what init rootfs's init (a container path) is: systemd
// when it resolves, inside the root, to a file named systemd; sysvinit when
// the root has /etc/inittab and /sbin/telinit. Symbolic links are followed
// inside the root only (openat2 RESOLVE_IN_ROOT).
func detectInit(rootfs, init string) initFlavor {
	flavor := initOther
	atPath(rootfs, init, func(target string, _ *unix.Stat_t) error {
		if real, err := os.Readlink(target); err == nil && filepath.Base(real) == "systemd" {
			flavor = initSystemd
		}
		return nil
	})
	if flavor != initOther {
		return flavor
	}
	found := 0
	for _, p := range []string{"etc/inittab", "sbin/telinit"} {
		atPath(rootfs, p, func(string, *unix.Stat_t) error { found++; return nil })
	}
	if found == 2 {
		return initSysv
	}
	return initOther
}

// HasInit reports whether the root at rootfs has an init to boot,
// [DefaultInit]: an executable file, found inside the root.
func HasInit(rootfs string) bool {
	ok := false
	atPath(rootfs, DefaultInit, func(_ string, st *unix.Stat_t) error {
		ok = st.Mode&unix.S_IFMT == unix.S_IFREG && st.Mode&0o111 != 0
		return nil
	})
	return ok
}

// prepareBoot settles, before a booted container starts, how Stop will ask
// it to shut down, the way its init expects: systemd halts on SIGRTMIN+3;
// sysvinit ignores SIGTERM and SIGRTMIN+3, and SIGINT reboots it, so it is
// asked with "telinit 0" run inside. It also gives the container a
// machine id of its own (see bootMachineID).
func (s *Spec) prepareBoot() error {
	if !s.Boot {
		return nil
	}
	if s.StopSignal == "" && len(s.Shutdown) == 0 {
		switch detectInit(s.Rootfs, s.Args[0]) {
		case initSystemd:
			s.StopSignal = "SIGRTMIN+3"
		case initSysv:
			s.Shutdown = []string{"telinit", "0"}
			if s.TTYs == 0 {
				s.TTYs = bootTTYs
			}
		}
	}
	return s.bootMachineID()
}

// stopSignal returns the signal Stop sends: StopSignal, or SIGTERM.
func (s *Spec) stopSignal() (unix.Signal, error) {
	if s.StopSignal == "" {
		return unix.SIGTERM, nil
	}
	return ParseSignal(s.StopSignal)
}

// ParseSignal parses a signal as a number ("15"), a name with or without
// its SIG prefix ("TERM", "SIGTERM") or a real-time signal ("RTMIN+3").
func ParseSignal(v string) (unix.Signal, error) {
	if n, err := strconv.Atoi(v); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("signal %d out of range 1-64", n)
		}
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(v)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if rest, ok := strings.CutPrefix(name, "SIGRTMIN"); ok {
		off := 0
		if rest != "" {
			n, err := strconv.Atoi(rest)
			if err != nil || n < 0 {
				return 0, fmt.Errorf("unknown signal %q", v)
			}
			off = n
		}
		// glibc's SIGRTMIN: the kernel's 32 and 33 are taken by the
		// threading library, as kill(1) and systemd count them.
		if sig := 34 + off; sig <= 64 {
			return unix.Signal(sig), nil
		}
		return 0, fmt.Errorf("signal %q out of range", v)
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", v)
}

// bootCapabilities is the capability set of a booted container: the
// default set and CAP_SYS_BOOT, with which its init halts or reboots by
// reboot(2), which in a PID namespace only ends that namespace's init
// (halt: as if killed by SIGINT; reboot: SIGHUP). Not CAP_SYS_ADMIN, with
// which container root could mount a fresh sysfs or /proc read-write and
// change the host kernel's settings, nor CAP_SYS_RAWIO (systemd would mount
// debugfs and tracefs).
var bootCapabilities = append(append([]capability(nil), defaultCapabilities...),
	capability{unix.CAP_SYS_BOOT, "CAP_SYS_BOOT"})

// capabilities returns the capability set of the container's processes.
func (s *Spec) capabilities() []capability {
	if s.Boot {
		return bootCapabilities
	}
	return defaultCapabilities
}

// bootExit turns how a booted container's init ended into its exit code:
// an init halted by reboot(2) in its PID namespace shows as killed by
// SIGINT, and that is a clean shutdown, 0.
func bootExit(code int) int {
	if code == 128+int(unix.SIGINT) {
		return 0
	}
	return code
}

// machineIDFile is the container's machine id, in its state directory,
// kept across boots.
const machineIDFile = "machine-id"

// bootMachineID sets s.MachineID to the container's machine id, kept in
// its state directory (made at its first boot, 32 hex digits as
// /etc/machine-id holds it). It goes into the root's /etc/machine-id when
// that is empty: a template is shipped with an empty one so that each
// machine made from it gets its own, and systemd, which would otherwise
// make a transient one and bind it there, cannot mount without
// CAP_SYS_ADMIN.
func (s *Spec) bootMachineID() error {
	p := s.machineIDPath()
	if p == "" {
		return nil
	}
	if data, err := os.ReadFile(p); err == nil && len(strings.TrimSpace(string(data))) == 32 {
		s.MachineID = strings.TrimSpace(string(data))
		return nil
	}
	id := make([]byte, 16)
	rand.Read(id)
	id[6] = id[6]&0x0f | 0x40 // a version 4 UUID, as systemd makes them
	id[8] = id[8]&0x3f | 0x80
	s.MachineID = hex.EncodeToString(id)
	if err := writeState(p, []byte(s.MachineID+"\n")); err != nil {
		return err
	}
	return os.Chmod(p, 0o644)
}

// machineIDPath is the host file of the container's machine id, "" for a
// container that does not boot or keeps no state.
func (s *Spec) machineIDPath() string {
	if !s.Boot || s.StateDir == "" {
		return ""
	}
	return filepath.Join(s.StateDir, machineIDFile)
}

// writeIdentity writes a booted container's hostname into its
// /etc/hostname, and its machine id into an empty /etc/machine-id, as
// vzctl set --hostname does: these are the machine's own files. It runs
// inside the container, after pivot_root, so every path resolves in its
// root; a symbolic link there is not followed (O_NOFOLLOW), nor a file
// that is not regular written.
func (s *Spec) writeIdentity() error {
	if s.Hostname != "" {
		if err := writeEtcFile("/etc/hostname", s.Hostname+"\n", false); err != nil {
			return err
		}
	}
	if s.etcHosts() != "" {
		if err := addHostsName("/etc/hosts", s.Hostname); err != nil {
			return err
		}
	}
	if s.MachineID != "" {
		return writeEtcFile("/etc/machine-id", s.MachineID+"\n", true)
	}
	return nil
}

// addHostsName makes the hosts file at path name hostname: it is made
// whole when missing or empty (see hostsFile), and given a 127.0.1.1 line
// when it does not name hostname, as vzctl set --hostname does; the
// container's own entries stay.
func addHostsName(path, hostname string) error {
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("failed to read the container's %s: %w", path, err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 1 && !strings.HasPrefix(f[0], "#") && slices.Contains(f[1:], hostname) {
			return nil
		}
	}
	content := hostsFile(hostname)
	if len(bytes.TrimSpace(data)) > 0 {
		content = strings.TrimSuffix(string(data), "\n") + "\n127.0.1.1\t" + hostname + "\n"
	}
	return writeEtcFile(path, content, false)
}

// writeEtcFile makes path hold content (creating it, mode 0644), unless it
// already does, or onlyEmpty is set and it holds anything, or it is not a
// regular file.
func writeEtcFile(path, content string, onlyEmpty bool) error {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0o644)
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOENT) {
		return nil // a link, or no /etc: the container's choice
	}
	if err != nil {
		return fmt.Errorf("failed to write the container's %s: %w", path, err)
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return err
	}
	old, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil || string(old) == content || (onlyEmpty && len(old) > 0) {
		return err
	}
	if err := f.Truncate(0); err != nil {
		return fmt.Errorf("failed to write the container's %s: %w", path, err)
	}
	if _, err := f.WriteAt([]byte(content), 0); err != nil {
		return fmt.Errorf("failed to write the container's %s: %w", path, err)
	}
	return nil
}

// bootEnv is the environment of a booted container's init, as systemd's
// container interface asks: container=acetate, container_uuid (its
// machine id), and container_ttys naming the ttys made for gettys.
func (s *Spec) bootEnv() []string {
	env := []string{"container=acetate", "TERM=vt220"}
	if s.MachineID != "" {
		env = append(env, "container_uuid="+s.MachineID)
	}
	if s.TTYs > 0 {
		env = append(env, "container_ttys="+strings.Join(consoleNames(s.TTYs)[1:], " "))
	}
	return MergeEnv(env, s.commandEnv())
}

// bootMounts are the file systems a distribution's init expects in a
// container, made after the standard ones: /run and /run/lock as tmpfs
// (systemd and sysvinit both keep their state there, and it must start
// empty at each boot).
func bootMounts() []mountEntry {
	return []mountEntry{
		{source: "tmpfs", target: "/run", fstype: "tmpfs", flags: unix.MS_NOSUID | unix.MS_NODEV | unix.MS_STRICTATIME, data: "mode=755,size=20%", mkdir: true},
		{source: "tmpfs", target: "/run/lock", fstype: "tmpfs", flags: msProc, data: "mode=1777,size=5m", mkdir: true},
	}
}

// bindEmptyMachineID binds the host file id over the root's
// /etc/machine-id when that exists and is empty (see bootMachineID).
func bindEmptyMachineID(rootfs, id string) error {
	empty := false
	atPath(rootfs, "etc/machine-id", func(_ string, st *unix.Stat_t) error {
		empty = st.Mode&unix.S_IFMT == unix.S_IFREG && st.Size == 0
		return nil
	})
	if !empty {
		return nil
	}
	return bindInRoot(rootfs, id, "etc/machine-id")
}

// consoles are the pseudo-terminals of a booted container: its console
// and its ttys, opened in the container's devpts and bound over
// /dev/console and /dev/ttyN, so that its init and gettys find them. The
// masters go to the container's supervisor, which holds them for as long as
// the container runs (see package console).
type consoles struct {
	masters []*os.File // console first, then tty1...
	console *os.File   // the console's slave: the init's standard streams
}

// consoleNames names the pseudo-terminals of a booted container with n ttys,
// in the order of consoles.masters.
func consoleNames(n int) []string {
	names := []string{"console"}
	for i := 1; i <= n; i++ {
		names = append(names, fmt.Sprintf("tty%d", i))
	}
	return names
}

// openConsoles makes the console and n ttys. It runs inside the container,
// after its /dev is set up.
func openConsoles(n int) (*consoles, error) {
	c := &consoles{}
	for _, name := range consoleNames(n) {
		master, slave, err := openPTY()
		if err != nil {
			c.close()
			return nil, err
		}
		c.masters = append(c.masters, master)
		err = bindDevice(slave, "/dev/"+name)
		if name == "console" {
			c.console = slave
		} else {
			slave.Close()
		}
		if err != nil {
			c.close()
			return nil, err
		}
	}
	return c, nil
}

// bindDevice binds the pty slave onto path, made as an empty file in the
// container's /dev tmpfs (the pty keeps its own device number, which the
// devices cgroup allows).
func bindDevice(slave *os.File, path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("failed to create %s: %w", path, err)
	}
	f.Close()
	src := fmt.Sprintf("/proc/self/fd/%d", slave.Fd())
	if err := unix.Mount(src, path, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("failed to bind a pty on %s: %w", path, err)
	}
	return nil
}

func (c *consoles) close() {
	for _, m := range c.masters {
		m.Close()
	}
	if c.console != nil {
		c.console.Close()
	}
}

// mountCgroupNamespace mounts the cgroup2 hierarchy on /sys/fs/cgroup as
// the calling thread's cgroup namespace sees it: rooted at the container's
// own cgroup, which systemd manages its services in. Everything above it,
// where the container's limits are written, is out of sight and out of
// reach; nothing of the v1 hierarchies is mounted. It is mounted
// read-write: a /sys/fs/cgroup that is empty or writable as a directory
// would make systemd mount the host's v1 controllers there itself.
func mountCgroupNamespace() error {
	if err := unix.Mount("cgroup2", "/sys/fs/cgroup", "cgroup2", msProc, ""); err != nil {
		return fmt.Errorf("failed to mount the container's cgroup2 on /sys/fs/cgroup: %w", err)
	}
	return nil
}

// consoleSocket is the socket in a container's state directory where
// clients attach to its consoles (see [ConsoleSocket]).
const consoleSocket = "console.sock"

// ConsoleSocket returns the socket through which a booted container's
// consoles are reached while it runs (see package console), given its
// state directory.
func ConsoleSocket(stateDir string) string { return filepath.Join(stateDir, consoleSocket) }

// serveConsoles holds a booted container's pty masters and serves them on
// its console socket. With a log, the console's output goes there (a
// detached container); without, the console is attached to the spec's
// streams, as systemd-nspawn -b shows the boot. The returned function stops
// serving once the container has ended.
func serveConsoles(spec *Spec, masters map[string]*os.File, log io.Writer) (func(), error) {
	dir, cleanup := spec.StateDir, func() {}
	if dir == "" {
		tmp, err := os.MkdirTemp("", "acetate-console-")
		if err != nil {
			return nil, fmt.Errorf("failed to make console socket directory: %w", err)
		}
		dir, cleanup = tmp, func() { os.RemoveAll(tmp) }
	}
	srv, err := console.Serve(ConsoleSocket(dir), masters, log)
	if err != nil {
		cleanup()
		return nil, err
	}
	attached := make(chan struct{})
	if log == nil && spec.Stdout != nil {
		go func() {
			defer close(attached)
			console.Attach(ConsoleSocket(dir), "console", spec.Stdin, spec.Stdout, 0)
		}()
	} else {
		close(attached)
	}
	return func() {
		srv.Close()
		<-attached
		os.Remove(ConsoleSocket(dir))
		cleanup()
	}, nil
}
