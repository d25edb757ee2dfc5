package console

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// DefaultDetachKey is the key that detaches a client: Ctrl-], as telnet,
// virsh console and machinectl use it.
const DefaultDetachKey = 0x1d

// ErrDetached is returned by Attach when the user typed the detach key.
var ErrDetached = errors.New("detached")

// Attach connects to the server at path, attaches to its pty name, writes
// the output it kept and then all new output to out, and types what it
// reads from in, until the user types detach (then it returns ErrDetached;
// 0 disables it) or the server goes away (the container ended: nil). When
// in is a terminal it is put in raw mode for the while; a nil in types
// nothing.
func Attach(path, name string, in io.Reader, out io.Writer, detach byte) error {
	addr, release, err := socketAddr(path)
	if err != nil {
		return err
	}
	c, err := net.Dial("unix", addr)
	release()
	if err != nil {
		return fmt.Errorf("failed to reach the console: %w", err)
	}
	defer c.Close()
	if _, err := fmt.Fprintf(c, "%s\n", name); err != nil {
		return fmt.Errorf("failed to reach the console: %w", err)
	}
	r := bufio.NewReader(c)
	answer, err := r.ReadString('\n')
	if err != nil {
		return fmt.Errorf("failed to reach the console: %w", err)
	}
	if msg, ok := strings.CutPrefix(strings.TrimSpace(answer), "error: "); ok {
		return errors.New(msg)
	}
	if f, ok := in.(*os.File); ok {
		if restore, err := MakeRaw(f); err == nil {
			defer restore()
		}
	}
	done := make(chan error, 2)
	go func() {
		_, err := io.Copy(out, r)
		done <- err
	}()
	if in != nil {
		go func() { done <- typeInput(c, in, detach) }()
	}
	return <-done
}

// typeInput copies in to c until in ends or detach is read.
func typeInput(c net.Conn, in io.Reader, detach byte) error {
	buf := make([]byte, 1024)
	for {
		n, err := in.Read(buf)
		if n > 0 {
			b := buf[:n]
			i := -1
			if detach != 0 {
				i = strings.IndexByte(string(b), detach)
			}
			if i >= 0 {
				c.Write(b[:i])
				return ErrDetached
			}
			if _, werr := c.Write(b); werr != nil {
				return nil
			}
		}
		if err != nil {
			return nil // the user's input ended: keep showing output
		}
	}
}

// MakeRaw puts terminal f in raw mode and returns what restores it; it
// fails on anything that is not a terminal.
func MakeRaw(f *os.File) (func(), error) {
	fd := int(f.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, err
	}
	t := *old
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &t); err != nil {
		return nil, err
	}
	return func() { unix.IoctlSetTermios(fd, unix.TCSETS, old) }, nil
}
