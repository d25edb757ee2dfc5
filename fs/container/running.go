package container

import (
	"errors"
	"fmt"
)

// ErrRunning: the operation needs the container stopped.
var ErrRunning = errors.New("running; stop it first")

// RunningFunc returns the host pid of container name's init while the
// container runs, and 0 when it does not. The runtime above this package
// knows; the CLI passes it to SetRunning.
type RunningFunc func(name string) (int, error)

// SetRunning tells m how to know whether a container runs. Until it is
// called, m takes every container as stopped.
func (m *Manager) SetRunning(f RunningFunc) { m.running = f }

// requireStopped fails with ErrRunning when container name runs. The
// attack it stops: a host tool working on the upper directory of a live
// container, which changes it all the while (swapping names for links to
// host files, say) and sees the tool's writes at once. Unmount, reset,
// rebase and commit refuse such a container, which must be stopped first.
func (m *Manager) requireStopped(name string) error {
	if m.running == nil {
		return nil
	}
	pid, err := m.running(name)
	if err != nil {
		return fmt.Errorf("container %s: %w", name, err)
	}
	if pid != 0 {
		return fmt.Errorf("container %s is %w (pid %d)", name, ErrRunning, pid)
	}
	return nil
}
