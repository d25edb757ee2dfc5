package runtime

import (
	"os"
	goruntime "runtime"

	"golang.org/x/sys/unix"
)

// initMain is the container's PID 1. It is started by startInit in new
// mount, PID, UTS, IPC (and network) namespaces, finds its Spec on the
// control socket, and sets the container up while its parent places it in
// the container's cgroups.
func initMain() {
	// Namespaces, capabilities and the fork of the command all act on the
	// calling thread: stay on one (the main thread, locked since init).
	goruntime.LockOSThread()
	sock := helperSocket()
	m, _, err := recvMessage(sock, 0)
	if err != nil || m.Spec == nil {
		fatalf(sock, "init: no spec: %v", err)
	}
	spec := m.Spec
	fwd := startSignalForwarder()
	os.WriteFile("/proc/self/comm", []byte("acetate-init"), 0)
	if err := joinNetns(spec.NetNS); err != nil {
		fatalf(sock, "init: %v", err)
	}
	if err := setupRootfs(spec.Rootfs, spec.ReadOnly, spec.etcHostname()); err != nil {
		fatalf(sock, "init: %v", err)
	}
	if spec.Hostname != "" {
		if err := unix.Sethostname([]byte(spec.Hostname)); err != nil {
			fatalf(sock, "init: failed to set hostname: %v", err)
		}
	}
	if spec.Network != NetworkHost && spec.NetNS == "" {
		if err := loopbackUp(); err != nil {
			fatalf(sock, "init: %v", err)
		}
	}
	p := commandProcess{
		args: spec.Args, env: spec.commandEnv(), dir: spec.Workdir,
		uid: spec.User, gid: spec.Group, terminal: spec.Terminal,
		signals: fwd, awaitJoin: m.AwaitJoin, awaited: m.Awaited,
		filter: m.Filter, noNewPrivs: spec.NoNewPrivileges,
		// The cgroup namespace is made once the parent has moved us
		// into the container's cgroups, so that they are its root.
		newCgroupNS: spec.CgroupName != "",
	}
	os.Exit(p.run(sock))
}
