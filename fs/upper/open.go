package upper

import (
	"fmt"
	"os"
	"strconv"

	"github.com/acetate/acetate/internal/beneath"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// openFile opens the regular file at with flags and returns it with its
// stat. The attacks it stops: the container swaps the name for a symbolic
// link to a host file, which a host tool opening by path then reads or
// writes as root; or it leaves a device node (copied up from a template
// that ships one), which a host tool opening it would open as the host's
// device. The name is opened O_PATH without following it, checked to be
// a regular file on that descriptor, and only that inode is reopened with
// flags, through /proc/self/fd.
func openFile(at beneath.At, rel string, flags int) (*os.File, unix.Stat_t, error) {
	var st unix.Stat_t
	p, err := at.Open(unix.O_PATH, 0)
	if err != nil {
		return nil, st, fmt.Errorf("upper dir: %s: %w", rel, err)
	}
	defer p.Close()
	if err := unix.Fstat(int(p.Fd()), &st); err != nil {
		return nil, st, fmt.Errorf("upper dir: %s: %w", rel, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, st, fmt.Errorf("upper dir: %s is not a regular file (mode %#o)", rel, st.Mode)
	}
	f, err := os.OpenFile("/proc/self/fd/"+strconv.Itoa(int(p.Fd())), flags|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, st, fmt.Errorf("upper dir: %s: %w", rel, err)
	}
	return f, st, nil
}

// Digest returns the digest of the regular file rel of the upper
// directory dir, opened as openFile does, at any depth.
func Digest(dir, rel string) (digest.Digest, error) {
	d, err := OpenDir(dir)
	if err != nil {
		return "", err
	}
	defer d.Close()
	at, err := beneath.ResolveDeep(int(d.Fd()), rel)
	if err != nil {
		return "", fmt.Errorf("upper dir: %s: %w", rel, err)
	}
	defer at.Close()
	f, _, err := openFile(at, rel, unix.O_RDONLY)
	if err != nil {
		return "", err
	}
	defer f.Close()
	dg, err := digest.FromReader(f)
	if err != nil {
		return "", fmt.Errorf("upper dir: %s: %w", rel, err)
	}
	return dg, nil
}
