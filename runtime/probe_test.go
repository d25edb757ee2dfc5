package runtime

import (
	"fmt"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// probeKeys reads the keys whose ids are args, and the session keyring, and
// prints what it got: "ID: DATA" or "ID: ERROR".
func probeKeys(args []string) int {
	ids := append([]string{strconv.Itoa(unix.KEY_SPEC_SESSION_KEYRING)}, args...)
	for _, a := range ids {
		id, err := strconv.Atoi(a)
		if err != nil {
			return 2
		}
		buf := make([]byte, 4096)
		n, err := unix.KeyctlBuffer(unix.KEYCTL_READ, id, buf, 0)
		if err != nil {
			fmt.Printf("%d: %v\n", id, err)
			continue
		}
		fmt.Printf("%d: %q\n", id, buf[:min(n, len(buf))])
	}
	return 0
}

// probeUmask calls umask(2) with each argument (a 64-bit number: the filter
// sees the whole register) and prints "ok" or the error for each.
func probeUmask(args []string) int {
	for _, a := range args {
		v, err := strconv.ParseUint(a, 0, 64)
		if err != nil {
			return 2
		}
		_, _, errno := syscall.RawSyscall(unix.SYS_UMASK, uintptr(v), 0, 0)
		if errno != 0 {
			fmt.Printf("%s:%v ", a, errno)
		} else {
			fmt.Printf("%s:ok ", a)
		}
	}
	fmt.Println()
	return 0
}

// probeSocket makes a socket of each domain given and prints "ok" or the
// error for each.
func probeSocket(args []string) int {
	for _, a := range args {
		domain, err := strconv.Atoi(a)
		if err != nil {
			return 2
		}
		fd, err := unix.Socket(domain, unix.SOCK_STREAM, 0)
		if fd >= 0 {
			unix.Close(fd)
		}
		if err != nil {
			fmt.Printf("%d:%v ", domain, err)
		} else {
			fmt.Printf("%d:ok ", domain)
		}
	}
	fmt.Println()
	return 0
}
