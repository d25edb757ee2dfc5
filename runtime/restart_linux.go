package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Restart policies, docker's: what the supervisor of a detached container does
// when its init ends by itself.
const (
	// RestartNo leaves it ended (the default).
	RestartNo = "no"
	// RestartOnFailure starts it again when it ended with a non-zero exit
	// code, at most RestartPolicy.MaxRetries times when that is set.
	RestartOnFailure = "on-failure"
	// RestartAlways starts it again however it ended, and acetate
	// autostart starts it after the host boots.
	RestartAlways = "always"
	// RestartUnlessStopped is RestartAlways, except that autostart leaves
	// a container that was stopped (acetate stop) before the host went
	// down.
	RestartUnlessStopped = "unless-stopped"
)

// RestartPolicy says whether a detached container whose init ends is
// started again. A Stop is never undone by it.
type RestartPolicy struct {
	Name string `json:"name,omitempty"`
	// MaxRetries bounds the restarts of RestartOnFailure; 0 is no bound.
	MaxRetries int `json:"maxRetries,omitempty"`
}

// ParseRestartPolicy parses no, on-failure[:N], always or unless-stopped.
func ParseRestartPolicy(v string) (RestartPolicy, error) {
	name, max, hasMax := strings.Cut(v, ":")
	p := RestartPolicy{Name: name}
	switch name {
	case "", RestartNo, RestartAlways, RestartUnlessStopped:
		if hasMax {
			return p, fmt.Errorf("restart policy %q takes no count (only on-failure:N does)", v)
		}
	case RestartOnFailure:
		if hasMax {
			n, err := strconv.Atoi(max)
			if err != nil || n < 0 {
				return p, fmt.Errorf("restart policy %q: the count must be a number, 0 or more", v)
			}
			p.MaxRetries = n
		}
	default:
		return p, fmt.Errorf("restart policy %q: want no, on-failure[:N], always or unless-stopped", v)
	}
	if p.Name == RestartNo {
		p.Name = ""
	}
	return p, nil
}

// String is the policy as ParseRestartPolicy reads it.
func (p RestartPolicy) String() string {
	switch {
	case p.Name == "":
		return RestartNo
	case p.Name == RestartOnFailure && p.MaxRetries > 0:
		return fmt.Sprintf("%s:%d", p.Name, p.MaxRetries)
	}
	return p.Name
}

// again reports whether a container that ended with code, after restarts
// restarts, starts again.
func (p RestartPolicy) again(code, restarts int) bool {
	switch p.Name {
	case RestartAlways, RestartUnlessStopped:
		return true
	case RestartOnFailure:
		return code != 0 && (p.MaxRetries == 0 || restarts < p.MaxRetries)
	}
	return false
}

// Restart back-off: the first restart waits restartDelay, each next one
// twice as long up to restartDelayMax; a run that lasted restartReset
// starts the count again, as docker does.
const (
	restartDelay    = 100 * time.Millisecond
	restartDelayMax = 10 * time.Second
	restartReset    = 10 * time.Second
)

// restartBackoff returns how long to wait before the next start, after a
// run that lasted ran, the delay before it having been last.
func restartBackoff(last, ran time.Duration) time.Duration {
	if last == 0 || ran >= restartReset {
		return restartDelay
	}
	return min(2*last, restartDelayMax)
}

// stoppedFile, in a state directory, says the container was stopped by
// Stop: its supervisor does not start it again, and it is still there after
// the host restarts (see [State.Stopped]) until the next start.
const stoppedFile = "stopped"

// markStopped records that the container of dir is being stopped.
func markStopped(dir string) error {
	return writeState(filepath.Join(dir, stoppedFile), []byte(time.Now().UTC().Format(time.RFC3339Nano)))
}

// wasStopped reports whether Stop stopped the container of dir.
func wasStopped(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, stoppedFile))
	return !errors.Is(err, os.ErrNotExist)
}

// ForgetStop forgets that Stop stopped the container of dir, as a host
// shutting down stops its containers: an unless-stopped restart policy
// then starts it at the next boot (see [State.Stopped]).
func ForgetStop(dir string) error {
	if err := os.Remove(filepath.Join(dir, stoppedFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("failed to forget the stop of %s: %w", dir, err)
	}
	return nil
}
