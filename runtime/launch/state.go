package launch

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/acetate/acetate/fs/container"
	"github.com/acetate/acetate/runtime"
)

// The states of a container.
const (
	StateCreated = "created"
	StateRunning = "running"
	// StatePaused is a running container whose processes are frozen
	// (acetate pause): they run again after unpause.
	StatePaused = "paused"
	StateExited = "exited"
	// StateBroken is a container whose processes run but whose root's
	// mount is gone (its FUSE server died): stop it and run it again.
	StateBroken = "broken"
)

// Status is what ps shows of a container.
type Status struct {
	Name     string `json:"name"`
	Template string `json:"template"`
	State    string `json:"state"`
	// Pid is the host pid of the container's init while it runs.
	Pid int `json:"pid,omitempty"`
	// ExitCode is set once it has exited.
	ExitCode *int `json:"exitCode,omitempty"`
	// OOMKilled: the kernel killed a process of the exited container at its
	// memory limit.
	OOMKilled bool `json:"oomKilled,omitempty"`
	// Started is when the running container started.
	Started *time.Time `json:"started,omitempty"`
	// Finished is when the exited container ended.
	Finished *time.Time `json:"finished,omitempty"`
	// Restarts is how many times its restart policy started it again
	// since acetate started it.
	Restarts int `json:"restarts,omitempty"`
	// DiffBytes is disk used by the container's own differences: measured
	// now by State, as of its last mount or unmount in List (which walks
	// no upper directory; see container.Manager.DiffBytes).
	DiffBytes int64 `json:"diffBytes"`
	// MountedAt is the root's mount point while mounted, by Driver.
	MountedAt string    `json:"mountedAt,omitempty"`
	Driver    string    `json:"driver,omitempty"`
	Created   time.Time `json:"created"`
}

// Alive reports whether the container's processes exist: it is running,
// paused or broken.
func (s *Status) Alive() bool {
	return s.State == StateRunning || s.State == StatePaused || s.State == StateBroken
}

// State returns the status of one container.
func (l *Launcher) State(name string) (*Status, error) {
	c, err := l.m.Get(name)
	if err != nil {
		return nil, err
	}
	return l.status(c, true)
}

// List returns the status of every container.
func (l *Launcher) List() ([]*Status, error) {
	cs, err := l.m.List()
	if err != nil {
		return nil, err
	}
	out := make([]*Status, 0, len(cs))
	for _, c := range cs {
		s, err := l.status(c, false)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func (l *Launcher) status(c *container.Container, measure bool) (*Status, error) {
	s := &Status{Name: c.Name, Template: c.Template, State: StateCreated, Created: c.Created}
	s.DiffBytes, _ = l.m.DiffBytes(c.Name, measure)
	if c.Mount != nil {
		s.MountedAt, s.Driver = c.Mount.Target, c.Mount.Driver
	}
	dir := l.m.RunDir(c.Name)
	rs, err := runtime.LoadState(dir)
	if errors.Is(err, fs.ErrNotExist) { // it never ran, or is starting
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	s.Restarts = rs.Restarts
	switch {
	case rs.Running:
		s.State, s.Pid = StateRunning, rs.Pid
		if alive, err := container.MountAlive(c); err == nil && !alive {
			s.State = StateBroken
		} else if paused, err := runtime.Paused(dir); err == nil && paused {
			// A freeze whose process died (kill -9 of a move) ends here.
			if thawed, err := runtime.ThawOrphaned(dir); err != nil || !thawed {
				s.State = StatePaused
			}
		}
		if fi, err := os.Stat(filepath.Join(dir, "pid")); err == nil {
			t := fi.ModTime()
			s.Started = &t
		}
	case rs.Exit != nil:
		s.State, s.ExitCode, s.Finished, s.OOMKilled = StateExited, &rs.Exit.Code, &rs.Exit.Finished, rs.Exit.OOMKilled
	}
	return s, nil
}
