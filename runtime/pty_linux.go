package runtime

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"

	"github.com/acetate/acetate/runtime/console"
	"golang.org/x/sys/unix"
)

// openPTY opens a new pseudo-terminal through /dev/ptmx as the calling thread
// sees it (inside a container: that container's devpts instance) and returns
// the master and the slave.
func openPTY() (master, slave *os.File, err error) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to open pty master: %w", err)
	}
	fd := int(m.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("failed to unlock pty: %w", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("failed to get pty number: %w", err)
	}
	name := "/dev/pts/" + strconv.Itoa(n)
	s, err := os.OpenFile(name, os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("failed to open pty slave %s: %w", name, err)
	}
	return m, s, nil
}

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// copyWinsize copies the window size of terminal from to terminal to.
func copyWinsize(from, to *os.File) {
	ws, err := unix.IoctlGetWinsize(int(from.Fd()), unix.TIOCGWINSZ)
	if err == nil {
		unix.IoctlSetWinsize(int(to.Fd()), unix.TIOCSWINSZ, ws)
	}
}

// ptyRelay copies between the caller's streams and a container's pty master.
type ptyRelay struct {
	master  *os.File
	restore func()
	winch   chan os.Signal
	outDone chan struct{}
	once    sync.Once
}

// startPTYRelay relays stdin to master and master to stdout. When stdin is a
// terminal it is put in raw mode and its window size follows SIGWINCH.
func startPTYRelay(master *os.File, stdin io.Reader, stdout io.Writer) *ptyRelay {
	r := &ptyRelay{master: master, outDone: make(chan struct{})}
	if f, ok := stdin.(*os.File); ok && isTerminal(f) {
		copyWinsize(f, master)
		if restore, err := console.MakeRaw(f); err == nil {
			r.restore = restore
		}
		r.winch = make(chan os.Signal, 1)
		signal.Notify(r.winch, syscall.SIGWINCH)
		go func() {
			for range r.winch {
				copyWinsize(f, master)
			}
		}()
	}
	if stdin != nil {
		go io.Copy(master, stdin)
	}
	go func() {
		defer close(r.outDone)
		if stdout == nil {
			stdout = io.Discard
		}
		_, err := io.Copy(stdout, master)
		// EIO is how a master reports that the slave side closed.
		if err != nil && !errors.Is(err, unix.EIO) {
			return
		}
	}()
	return r
}

// wait waits for the output to drain once the command has exited, and undoes
// the terminal changes.
func (r *ptyRelay) wait() {
	<-r.outDone
	r.once.Do(func() {
		if r.winch != nil {
			signal.Stop(r.winch)
			close(r.winch)
		}
		if r.restore != nil {
			r.restore()
		}
		r.master.Close()
	})
}
