package runtime

import (
	"errors"
	"fmt"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// capability is one capability: its bit and its name, as seccomp profiles
// name it in their conditions.
type capability struct {
	bit  int
	name string
}

// defaultCapabilities is the capability set a container's command keeps:
// Docker's default set without CAP_MKNOD, so no device node can be created
// inside the container.
var defaultCapabilities = []capability{
	{unix.CAP_CHOWN, "CAP_CHOWN"}, {unix.CAP_DAC_OVERRIDE, "CAP_DAC_OVERRIDE"},
	{unix.CAP_FSETID, "CAP_FSETID"}, {unix.CAP_FOWNER, "CAP_FOWNER"},
	{unix.CAP_NET_RAW, "CAP_NET_RAW"}, {unix.CAP_SETGID, "CAP_SETGID"},
	{unix.CAP_SETUID, "CAP_SETUID"}, {unix.CAP_SETFCAP, "CAP_SETFCAP"},
	{unix.CAP_SETPCAP, "CAP_SETPCAP"}, {unix.CAP_NET_BIND_SERVICE, "CAP_NET_BIND_SERVICE"},
	{unix.CAP_SYS_CHROOT, "CAP_SYS_CHROOT"}, {unix.CAP_KILL, "CAP_KILL"},
	{unix.CAP_AUDIT_WRITE, "CAP_AUDIT_WRITE"},
}

// capMask returns caps as a 64-bit mask.
func capMask(caps []capability) uint64 {
	var m uint64
	for _, c := range caps {
		m |= 1 << uint(c.bit)
	}
	return m
}

// restrictProcess drops every capability outside keep from the bounding,
// effective and permitted sets, empties the inheritable and ambient sets, and
// sets no_new_privs when noNewPrivs is set, for the command that the calling
// thread forks next.
//
// These are attributes of a thread, and the calling thread must be locked
// and be the one that forks the command, which inherits them. The helper's
// other threads (idle Go runtime threads, which never run container code)
// keep theirs: changing every thread (syscall.AllThreadsSyscall) stops them
// all once per call, a cost paid at every start. Instead, as runc does for
// its init, the helper is made non-dumpable, so that nothing in the
// container can ptrace any of its threads or open its /proc/<pid>/{mem,fd,
// root,environ} (that needs CAP_SYS_PTRACE, which the container lacks).
func restrictProcess(keep []capability, noNewPrivs bool) error {
	mask := capMask(keep)
	for c := 0; c <= 63; c++ {
		if mask&(1<<uint(c)) != 0 {
			continue
		}
		err := prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0)
		if errors.Is(err, unix.EINVAL) {
			break // past the kernel's last capability
		}
		if err != nil {
			return fmt.Errorf("failed to drop capability %d from the bounding set: %w", c, err)
		}
	}
	if err := prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("failed to clear ambient capabilities: %w", err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	for i := range data {
		word := uint32(mask >> (32 * i))
		// The inheritable set stays empty, as in Docker since
		// CVE-2022-24769: a file's inheritable capabilities must not
		// lift a process's permitted set across execve.
		data[i] = unix.CapUserData{Effective: word, Permitted: word}
	}
	if err := prctl(unix.PR_SET_DUMPABLE, 0, 0); err != nil {
		return fmt.Errorf("failed to make the helper non-dumpable: %w", err)
	}
	if err := rawSyscall(unix.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0); err != nil {
		return fmt.Errorf("failed to set capabilities: %w", err)
	}
	if !noNewPrivs {
		return nil
	}
	if err := prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0); err != nil {
		return fmt.Errorf("failed to set no_new_privs: %w", err)
	}
	return nil
}

func prctl(option int, arg2, arg3 uintptr) error {
	return rawSyscall(unix.SYS_PRCTL, uintptr(option), arg2, arg3)
}

// rawSyscall runs a system call on the calling thread.
func rawSyscall(trap, a1, a2, a3 uintptr) error {
	_, _, errno := syscall.RawSyscall(trap, a1, a2, a3)
	if errno != 0 {
		return errno
	}
	return nil
}
