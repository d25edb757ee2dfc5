// Package flock takes advisory whole-file locks (flock(2)) the way every
// lock of acetate's is taken: waiting for the holder, and waiting again
// when a signal interrupts the wait.
package flock

import (
	"errors"

	"golang.org/x/sys/unix"
)

// Lock takes the lock how (unix.LOCK_EX or unix.LOCK_SH) on the file fd,
// waiting until the holder releases it. A signal that interrupts the
// wait (Go's runtime preempts its threads with SIGURG) does not end it.
func Lock(fd, how int) error {
	for {
		err := unix.Flock(fd, how)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}
