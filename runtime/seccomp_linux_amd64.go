package runtime

import "golang.org/x/sys/unix"

// nativeAuditArch is the seccomp_data arch of this architecture's native
// system call ABI.
const nativeAuditArch = unix.AUDIT_ARCH_X86_64
