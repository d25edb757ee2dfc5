package upper

import (
	"fmt"
	"os"

	"github.com/acetate/acetate/internal/beneath"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// openFile opens the regular file at with flags and returns it with its
// stat. beneath's At.Open never follows a symbolic link the container
// swapped in and never opens a device node, FIFO or socket (it checks an
// O_PATH descriptor and reopens that inode); a directory is refused here.
func openFile(at beneath.At, rel string, flags int) (*os.File, unix.Stat_t, error) {
	var st unix.Stat_t
	f, err := at.Open(flags, 0)
	if err != nil {
		return nil, st, fmt.Errorf("upper dir: %q: %w", rel, err)
	}
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, st, fmt.Errorf("upper dir: %q: %w", rel, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		f.Close()
		return nil, st, fmt.Errorf("upper dir: %q is not a regular file (mode %#o)", rel, st.Mode)
	}
	return f, st, nil
}

// Digest returns the digest of the regular file rel of the upper
// directory dir, opened as openFile does, at any depth.
func Digest(dir, rel string) (digest.Digest, error) {
	d, err := openDir(dir)
	if err != nil {
		return "", err
	}
	defer d.Close()
	at, err := beneath.ResolveDeep(int(d.Fd()), rel)
	if err != nil {
		return "", fmt.Errorf("upper dir: %q: %w", rel, err)
	}
	defer at.Close()
	f, _, err := openFile(at, rel, unix.O_RDONLY)
	if err != nil {
		return "", err
	}
	defer f.Close()
	dg, err := digest.FromReader(f)
	if err != nil {
		return "", fmt.Errorf("upper dir: %q: %w", rel, err)
	}
	return dg, nil
}
