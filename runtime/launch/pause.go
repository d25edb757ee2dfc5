package launch

import (
	"fmt"
	"time"

	"github.com/acetate/acetate/runtime"
)

// Pause freezes every process of the running container name (see
// runtime.Pause); its state is then "paused" until Resume.
func (l *Launcher) Pause(name string) error {
	if _, err := l.m.Get(name); err != nil {
		return err
	}
	if err := runtime.Pause(l.m.RunDir(name)); err != nil {
		return fmt.Errorf("pause %s: %w", name, err)
	}
	return nil
}

// Resume thaws the paused container name.
func (l *Launcher) Resume(name string) error {
	if _, err := l.m.Get(name); err != nil {
		return err
	}
	if err := runtime.Resume(l.m.RunDir(name)); err != nil {
		return fmt.Errorf("unpause %s: %w", name, err)
	}
	return nil
}

// Frozen runs f with the container name frozen when it runs (at once when
// it does not), thaws it, and returns f's error and how long the container
// was frozen (0 when it did not run). A container paused before stays
// paused. It is how a tool reads a running container's files in a state
// the container could have been in: no process is half-way through a
// write while f reads.
func (l *Launcher) Frozen(name string, f func() error) (time.Duration, error) {
	dir := l.m.RunDir(name)
	st, err := runtime.LoadState(dir)
	if err != nil || !st.Running {
		return 0, f()
	}
	paused, err := runtime.Paused(dir)
	if err != nil {
		return 0, err
	}
	if paused {
		return 0, f()
	}
	start := time.Now()
	thaw, err := runtime.Freeze(dir)
	if err != nil {
		return 0, fmt.Errorf("freeze %s: %w", name, err)
	}
	err = f()
	if rerr := thaw(); rerr != nil && err == nil {
		err = fmt.Errorf("thaw %s: %w", name, rerr)
	}
	return time.Since(start), err
}

// Freeze freezes the running container name for this process (see
// runtime.Freeze: if the process dies first, the next look at the
// container thaws it) and returns what thaws it.
func (l *Launcher) Freeze(name string) (thaw func() error, err error) {
	if _, err := l.m.Get(name); err != nil {
		return nil, err
	}
	thaw, err = runtime.Freeze(l.m.RunDir(name))
	if err != nil {
		return nil, fmt.Errorf("freeze %s: %w", name, err)
	}
	return thaw, nil
}
