// Package runtime is acetate's namespace launcher: it runs one process inside a
// container whose root filesystem is an already-mounted directory (the merged
// root that package fs produces). It depends on no other runtime binary (runc,
// crun, bwrap) at run time.
//
// # How a container starts
//
// The calling binary re-executes itself (/proc/self/exe) with an explicit,
// visible init step: the child is cloned into new mount, PID, UTS and IPC
// namespaces (and a network namespace when [Spec.Network] is [NetworkNone])
// and finds its [Spec], as JSON, already queued on a control socket. While
// the parent moves it into the container's cgroups, it sets the container
// up, as PID 1 of the container:
//
//  1. makes every mount private, bind-mounts the root onto itself and
//     pivot_roots into it, detaching the old root;
//  2. mounts a fresh /proc (kernel paths masked or read-only), a read-only
//     /sys, a tmpfs /dev holding only null, zero, full, random, urandom, tty,
//     a private devpts instance, /dev/ptmx, /dev/shm and /dev/mqueue;
//  3. sets the hostname and brings loopback up;
//  4. once told it is in its cgroups, makes a cgroup namespace rooted there;
//  5. reduces the capability bounding, effective and permitted sets to
//     Docker's default set less CAP_MKNOD (CHOWN, DAC_OVERRIDE, FSETID,
//     FOWNER, NET_RAW, SETGID, SETUID, SETFCAP, SETPCAP, NET_BIND_SERVICE,
//     SYS_CHROOT, KILL, AUDIT_WRITE), empties the inheritable and ambient
//     sets, sets no_new_privs and makes itself non-dumpable. Without
//     CAP_MKNOD no device node can be made inside, on cgroup v1 and v2
//     alike, with no devices cgroup;
//  6. forks the command with the requested user and group (a command not
//     found exits 127, one not executable 126), forwards signals to it,
//     reaps every orphan, and exits with the command's status, 128+n when
//     signal n killed it.
//
// Because mounts are made after pivot_root, every path is resolved inside the
// container: a symbolic link in the image pointing at "/" names the
// container's root, never the host's.
//
// # Wiring it into a binary
//
// The binary that uses this package must call [InitMain] first thing in main
// (and a test binary in TestMain). It returns at once unless the process was
// started as one of the package's helpers:
//
//	func main() {
//		runtime.InitMain()
//		// ... the CLI ...
//	}
//
// # Running a container
//
// [Run] runs a container in the foreground, with standard streams attached,
// and returns the exit code (128+n for a command killed by signal n):
//
//	mem, err := runtime.ParseMemory("512m") // from --memory
//	code, err := runtime.Run(ctx, runtime.Spec{
//		Rootfs:     "/var/lib/acetate/containers/web/root", // mounted by package fs
//		Args:       []string{"sh", "-c", "echo hello"},
//		Hostname:   "web",
//		CgroupName: "acetate/web",
//		Limits:     runtime.Limits{Memory: mem, Pids: 512, CPUs: 1.5},
//		Stdin:      os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
//	})
//
// [Start] runs it detached under a small monitor process that records its
// pid, log and exit status in [Spec.StateDir]; [Exec], [Stop] and
// [LoadState] act on that state directory:
//
//	spec.StateDir = "/var/lib/acetate/containers/web/state"
//	pid, err := runtime.Start(spec)     // ErrRunning if it already runs
//	code, err := runtime.Exec(ctx, spec.StateDir, []string{"ps"}, runtime.ExecOptions{Stdout: os.Stdout})
//	err = runtime.Stop(spec.StateDir, 10*time.Second) // SIGTERM, SIGKILL after 10s
//	st, err := runtime.LoadState(spec.StateDir)       // st.Exit.Code: 143
//
// # Start-up cost
//
// A start re-executes the binary, so every package initializer of the binary
// (package-level regexp.MustCompile and the like) runs once per container, and
// every helper starts the Go runtime. BenchmarkStartTrue measures /bin/true
// in a container against bwrap, crun and runc on the same root.
//
// # Resource limits
//
// Memory, pids and CPU limits work on cgroup v2 (a unified hierarchy with
// controllers at /sys/fs/cgroup) and on cgroup v1 (per-controller hierarchies
// under /sys/fs/cgroup, also in hybrid mode, where the v2 tree has no
// controllers). See [Limits].
//
// Kernel requirements: Linux 5.3+ (pidfd_open), cgroup namespaces (4.6+).
// Callers need root (CAP_SYS_ADMIN in the initial user namespace).
package runtime
