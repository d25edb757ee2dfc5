package beneath

import (
	"errors"
	"runtime"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// xattrArgs is struct xattr_args of getxattrat(2) and setxattrat(2).
type xattrArgs struct {
	value *byte
	size  uint32
	flags uint32
}

// haveXattrat reports whether the kernel has getxattrat and its siblings
// (Linux 6.13+); without them the *xattr calls go through /proc.
var haveXattrat = sync.OnceValue(func() bool {
	_, _, errno := unix.Syscall6(unix.SYS_LISTXATTRAT, ^uintptr(0), 0, unix.AT_EMPTY_PATH, 0, 0, 0)
	return errno != unix.ENOSYS
})

// haveFchmodat2 reports whether the kernel has fchmodat2 (Linux 6.6+).
var haveFchmodat2 = sync.OnceValue(func() bool {
	_, _, errno := unix.Syscall6(unix.SYS_FCHMODAT2, ^uintptr(0), 0, 0, unix.AT_EMPTY_PATH, 0, 0)
	return errno != unix.ENOSYS
})

// procPath names the entry through its parent's descriptor in /proc; the
// l*xattr calls do not follow the entry if it is a symbolic link.
func (a At) procPath() string { return procFd(a.Dir) + "/" + a.Name }

func ptr(s string) *byte {
	p, err := unix.BytePtrFromString(s)
	if err != nil { // a NUL inside: no such name
		return nil
	}
	return p
}

func bufPtr(b []byte) *byte {
	if len(b) == 0 {
		return nil
	}
	return &b[0]
}

func sysErr(errno unix.Errno) error {
	if errno == 0 {
		return nil
	}
	return errno
}

// Getxattr reads extended attribute attr of the entry into dest and
// returns its size (with dest empty, only the size).
func (a At) Getxattr(attr string, dest []byte) (int, error) {
	if !haveXattrat() {
		n, err := unix.Lgetxattr(a.procPath(), attr, dest)
		return n, a.pathErr("lgetxattr", err)
	}
	args := xattrArgs{value: bufPtr(dest), size: uint32(len(dest))}
	name, path := ptr(attr), ptr(a.Name)
	r, _, errno := unix.Syscall6(unix.SYS_GETXATTRAT, uintptr(a.Dir), uintptr(unsafe.Pointer(path)),
		unix.AT_SYMLINK_NOFOLLOW, uintptr(unsafe.Pointer(name)), uintptr(unsafe.Pointer(&args)), unsafe.Sizeof(args))
	runtime.KeepAlive(dest)
	return int(r), a.pathErr("getxattrat", sysErr(errno))
}

// Setxattr sets extended attribute attr of the entry (flags: 0,
// XATTR_CREATE or XATTR_REPLACE).
func (a At) Setxattr(attr string, value []byte, flags int) error {
	if !haveXattrat() {
		return a.pathErr("lsetxattr", unix.Lsetxattr(a.procPath(), attr, value, flags))
	}
	args := xattrArgs{value: bufPtr(value), size: uint32(len(value)), flags: uint32(flags)}
	name, path := ptr(attr), ptr(a.Name)
	_, _, errno := unix.Syscall6(unix.SYS_SETXATTRAT, uintptr(a.Dir), uintptr(unsafe.Pointer(path)),
		unix.AT_SYMLINK_NOFOLLOW, uintptr(unsafe.Pointer(name)), uintptr(unsafe.Pointer(&args)), unsafe.Sizeof(args))
	runtime.KeepAlive(value)
	return a.pathErr("setxattrat", sysErr(errno))
}

// Removexattr removes extended attribute attr of the entry.
func (a At) Removexattr(attr string) error {
	if !haveXattrat() {
		return a.pathErr("lremovexattr", unix.Lremovexattr(a.procPath(), attr))
	}
	name, path := ptr(attr), ptr(a.Name)
	_, _, errno := unix.Syscall6(unix.SYS_REMOVEXATTRAT, uintptr(a.Dir), uintptr(unsafe.Pointer(path)),
		unix.AT_SYMLINK_NOFOLLOW, uintptr(unsafe.Pointer(name)), 0, 0)
	return a.pathErr("removexattrat", sysErr(errno))
}

// listxattr lists the names of the entry's extended attributes into dest
// (NUL-separated) and returns the size.
func (a At) listxattr(dest []byte) (int, error) {
	if !haveXattrat() {
		n, err := unix.Llistxattr(a.procPath(), dest)
		return n, a.pathErr("llistxattr", err)
	}
	path := ptr(a.Name)
	r, _, errno := unix.Syscall6(unix.SYS_LISTXATTRAT, uintptr(a.Dir), uintptr(unsafe.Pointer(path)),
		unix.AT_SYMLINK_NOFOLLOW, uintptr(unsafe.Pointer(bufPtr(dest))), uintptr(len(dest)), 0)
	runtime.KeepAlive(dest)
	return int(r), a.pathErr("listxattrat", sysErr(errno))
}

// Xattr returns the value of extended attribute attr of the entry, and
// false when it has none (or it cannot be read).
func (a At) Xattr(attr string) (string, bool) {
	buf := make([]byte, 256)
	for {
		n, err := a.Getxattr(attr, buf)
		if errors.Is(err, unix.ERANGE) {
			buf = make([]byte, len(buf)*4)
			continue
		}
		if err != nil {
			return "", false
		}
		return string(buf[:n]), true
	}
}

// Listxattr returns the names of the entry's extended attributes.
func (a At) Listxattr() ([]string, error) {
	buf := make([]byte, 1024)
	for {
		n, err := a.listxattr(buf)
		if errors.Is(err, unix.ERANGE) {
			buf = make([]byte, len(buf)*4)
			continue
		}
		if err != nil {
			return nil, err
		}
		var names []string
		for _, s := range strings.Split(string(buf[:n]), "\x00") {
			if s != "" {
				names = append(names, s)
			}
		}
		return names, nil
	}
}
