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
//  1. makes every mount private, bind-mounts the root onto itself, binds
//     StateDir/hostname read-only over the root's /etc/hostname (when the
//     root has that file: the container's hostname, not its template
//     builder's; a bind rather than a write into the root, so that the
//     container's differences hold only what its processes changed), and
//     pivot_roots into it, detaching the old root;
//  2. mounts a fresh /proc (kernel paths masked or read-only), a read-only
//     /sys, a tmpfs /dev holding only null, zero, full, random, urandom, tty,
//     a private devpts instance, /dev/ptmx, /dev/shm and /dev/mqueue;
//  3. sets the hostname and brings loopback up;
//  4. once told it is in its cgroups, makes a cgroup namespace rooted there;
//  5. joins a new, empty session keyring, installs the seccomp filter (see
//     below), reduces the capability bounding, effective and permitted sets
//     to Docker's default set less CAP_MKNOD (CHOWN, DAC_OVERRIDE, FSETID,
//     FOWNER, NET_RAW, SETGID, SETUID, SETFCAP, SETPCAP, NET_BIND_SERVICE,
//     SYS_CHROOT, KILL, AUDIT_WRITE), empties the inheritable and ambient
//     sets, and makes itself non-dumpable (no_new_privs only with
//     [Spec.NoNewPrivileges]);
//  6. takes the requested user and group and executes the command in its
//     own place (a command not found exits 127, one not executable 126):
//     the command is the container's PID 1, as docker, podman and
//     systemd-nspawn run one, and nothing of acetate stays inside. As PID
//     1 of its namespace it gets only the signals it handles, and adopts
//     orphans. With [Spec.Init] (docker run --init) the init forks the
//     command instead, forwards signals to it, reaps every orphan, and
//     exits with the command's status, 128+n when signal n killed it. A
//     booted container's init ([Spec.Boot]) executes the root's own init
//     (see "Booting an OS").
//
// Because mounts are made after pivot_root, every path is resolved inside the
// container: a symbolic link in the image pointing at "/" names the
// container's root, never the host's.
//
// Volumes, bind mounts and tmpfs ([Spec.Mounts]) are the exception: their
// sources are host paths, so they are mounted before pivot_root, each onto
// a descriptor of its target opened with RESOLVE_IN_ROOT (a link there
// leads inside the root too), made detached and given nodev (and
// read-only) before it is attached: see mountVolumes.
//
// # Containment: a container is hostile
//
// Each defence below is named after the attack it stops.
//
// Device nodes shipped in a template (the host's disk b 7:0, its kernel
// log c 1:11): the container's bind mount of its root is nodev, so no node
// in the template or the upper directory opens (EACCES); the overlay
// driver's host mount is nodev and nosuid as well. The container's /dev is
// a tmpfs holding only the standard nodes, and without CAP_MKNOD none can
// be made there. A node that gets there anyway (the host can put one)
// fails with EPERM: the container's devices cgroup (v1: devices.deny "a",
// then the standard set, set up once on the parent cgroup so that each
// container's inherits it) or, on cgroup v2, a BPF_PROG_TYPE_CGROUP_DEVICE
// program attached to its cgroup, allow only null, zero, full, random,
// urandom, tty, console, ptmx and the pty slaves, as runc does. The v1
// controller is used where it is mounted (a hybrid host); the program where
// the cgroups are v2. A container without a CgroupName has nodev and no
// CAP_MKNOD only.
//
// # Set-uid binaries
//
// A system container needs su, passwd and ping, which are set-uid root,
// so no_new_privs is off by default and set-uid and file capabilities work
// inside, on the container's own (suid) mount of its root. This grants
// nothing outside: a set-uid root binary run by a container user becomes
// the container's root, whose capabilities the bounding set caps at the
// container's set (a set-uid process gets at most that), under the same
// seccomp filter, in the same namespaces and cgroups; that is what the
// container's root already has. On the host, the overlay driver mounts the
// root nosuid, so a set-uid binary that container root made never runs
// set-uid for a host user who can reach the mount point. Spec.NoNewPrivileges
// (--security-opt no-new-privileges) sets no_new_privs for application
// containers that need no set-uid at all.
//
// # The system call filter
//
// Lifting its own limits (new user namespace in which container root is
// host uid 0, cgroup v1 mounted there, pids.max rewritten), reading root's
// keyring, and the kernel's less-trodden interfaces are closed by a default
// seccomp filter with the coverage of Docker's default profile: new
// namespaces (unshare, setns, clone with CLONE_NEW*, clone3), mount and the
// new mount API, pivot_root, keyctl, add_key, request_key, io_uring, bpf,
// perf_event_open, userfaultfd, open_by_handle_at, kexec, modules, swapon,
// reboot all fail with EPERM (clone3 with ENOSYS, so that libc falls back
// to clone). The profile is Docker's own, as data, from
// github.com/moby/profiles/seccomp, which also reads Docker-format JSON
// profiles ([Spec.Seccomp]: "" for the default, [SeccompUnconfined], or a
// file); it is compiled here to classic BPF, a binary search over system
// call numbers (see seccomp_linux.go for why not libseccomp or
// elastic/go-seccomp-bpf). The same filter is installed for every [Exec].
// Processes of another ABI (32-bit x86, x32) are killed. The container's
// view holds no cgroup file system and cannot mount one, so no limit file
// is writable from inside; with seccomp unconfined container root can make
// a user namespace and get there: run untrusted containers confined. A
// [Stop], and the end of a run, remove every cgroup below the container's
// as well.
//
// Root's keyring: each command joins a new anonymous session keyring, so
// the caller's session keys are not possessed inside; uid 0's user keyring
// is not namespaced, and the filter's refusal of keyctl keeps it out of
// reach (/proc/keys is masked too).
//
// The caller's files: the container's standard streams are pipes this
// process relays (or a pty with [Spec.Terminal]), never the caller's
// descriptors, which /proc/self/fd/N would reopen, for writing too.
//
// A fork bomb: a container with cgroups gets at most [DefaultPids]
// processes and threads unless Limits.Pids says otherwise.
//
// # acetate's processes are not the container's
//
// A container's limits are its own processes': the init helper (a Go
// process of several threads) counts against the pids limit only until
// it executes the command, and the exec helpers and acetate's init
// (Spec.Init) join the container's cgroups only for the instant in which
// they fork the command, and are moved back into their caller's cgroups
// once it runs. Meanwhile the pids limit is raised by their threads and a
// slack of 4 (under a lock on the pids cgroup directory, which
// UpdateLimits takes too), and put back once the helper has executed the
// command or left. So --pids 20 is 20 processes of the container's, and
// what the init allocated while it set the container up is charged to its
// caller's memory cgroup. A booted container's PID 1 is the OS's own
// init, which belongs in the container. The pid of acetate's init
// (State.Pid with Spec.Init) is therefore not a way to find the
// container's cgroups: they are found by CgroupName.
//
// What stays on the host for a running container is its share of the
// supervisor (see [Start]): about 30 KiB of its memory, no process of its
// own.
//
// # Booting an OS
//
// A Spec with Boot runs the root's own init (Args, default /sbin/init) as
// the container's PID 1, as systemd-nspawn -b and lxc-start do, with what
// systemd's container interface asks for; sysvinit is served the same way.
// The init helper sets the container up as for a command, then:
//
//   - mounts /run and /run/lock as tmpfs, and writes the container's
//     hostname into /etc/hostname (and a 127.0.1.1 line for it into
//     /etc/hosts when no network gives one) and its machine id (kept in
//     StateDir, made at the first boot) into an empty /etc/machine-id: written,
//     not bound, because systemd unmounts what is mounted over /etc at
//     shutdown and cannot without CAP_SYS_ADMIN;
//   - opens the console and, for sysvinit, tty1-6 as pseudo-terminals of
//     the container's devpts, binds them on /dev/console and /dev/ttyN
//     (no /dev/tty0, so systemd starts a getty on the console only), and
//     sends the masters to its parent, which holds them for as long as the
//     container runs (package console: acetate console attaches; the
//     console's output goes to the log);
//   - once in the container's cgroups, makes its cgroup namespace and
//     mounts cgroup2 on /sys/fs/cgroup, read-write and rooted at the
//     container's own cgroup, where systemd 252 makes its slices and
//     scopes. Its limits stay out of reach: on a hybrid host (v1
//     controllers, a v2 tree without them, as here) they are in the v1
//     hierarchies, which the container never sees, and its v2 cgroup is
//     made beside them in the unified tree; on a v2 host they are written
//     in the container's cgroup and its processes go in "payload" below
//     it, as systemd-nspawn does, so that the limit files are above the
//     namespace's root. A /sys/fs/cgroup left empty or writable would
//     make systemd mount the host's v1 hierarchies and make cgroups at
//     their roots;
//   - sets container=acetate, container_uuid and container_ttys, confines
//     the thread as for a command, with CAP_SYS_BOOT added (so that the
//     init's halt or reboot ends only its PID namespace: a halt shows as
//     killed by SIGINT, which Start records as exit 0) and the seccomp
//     filter computed for that set, gives the init the console as its
//     standard streams, and executes it.
//
// Not CAP_SYS_ADMIN, which LXC and nspawn give: with it and no user
// namespace, container root could mount a fresh sysfs or /proc read-write
// and change the host kernel's settings. Debian 12's systemd boots to
// "running" without it: its services' sandboxing steps that need it are
// skipped.
//
// [Stop] asks the OS to shut down as its init expects: systemd halts on
// SIGRTMIN+3; sysvinit ignores SIGTERM and SIGRTMIN+3 and reboots on SIGINT,
// so "telinit 0" is run inside it (Spec.Shutdown, set at start from the
// init that /sbin/init resolves to inside the root). The supervisor of a
// detached container applies its [RestartPolicy] when the init ends by
// itself, never after a Stop.
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
// [Start] runs it detached, under the supervisor of [Spec.Supervisor] (one
// process for all the containers started with that directory), which
// records its pid, log and exit status in [Spec.StateDir]; [Exec], [Stop] and
// [LoadState] act on that state directory:
//
//	spec.StateDir = "/var/lib/acetate/containers/web/state"
//	pid, err := runtime.Start(spec)     // ErrRunning if it already runs
//	code, err := runtime.Exec(ctx, spec.StateDir, []string{"ps"}, runtime.ExecOptions{Stdout: os.Stdout})
//	err = runtime.Stop(spec.StateDir, 10*time.Second) // SIGTERM (or the init's way), SIGKILL after 10s
//	st, err := runtime.LoadState(spec.StateDir)       // st.Exit.Code: 143
//
// # Start-up cost
//
// A start re-executes the binary, so every package initializer of the binary
// (package-level regexp.MustCompile and the like) runs once per container, and
// every helper starts the Go runtime. BenchmarkStartTrue measures /bin/true
// in a container against bwrap, crun and runc on the same root.
//
// Containment adds, per start on this 2-CPU VM: the seccomp filter's load,
// 55-95 us (the kernel JIT-compiles it, works out its per-syscall cache,
// and frees it after the container ends, off the start path but on a CPU);
// its compilation, about 40 us once per process (the default profile is
// compiled once); the nodev remount of the root, about 15 us; and with
// cgroups, the devices cgroup and the default pids limit, about 40 us.
//
// # Resource limits
//
// Memory, pids and CPU limits work on cgroup v2 (a unified hierarchy with
// controllers at /sys/fs/cgroup) and on cgroup v1 (per-controller hierarchies
// under /sys/fs/cgroup, also in hybrid mode, where the v2 tree has no
// controllers). See [Limits]. [UpdateLimits] changes them while the
// container runs.
//
// Kernel requirements: Linux 5.3+ (pidfd_open), 5.12+ for Mounts (the new
// mount API with mount_setattr), cgroup namespaces (4.6+),
// seccomp filters with SECCOMP_RET_KILL_PROCESS (4.14+); BPF device
// programs need cgroup v2 and CONFIG_CGROUP_BPF. The seccomp filter is built
// for amd64 and arm64.
// Callers need root (CAP_SYS_ADMIN in the initial user namespace).
package runtime
