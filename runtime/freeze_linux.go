package runtime

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// FreezeTimeout bounds how long Pause waits for every process of a
// container to be frozen. A process in an uninterruptible sleep (a read of
// a dead NFS server) cannot be frozen; Pause then thaws what it froze and
// fails rather than hang.
const FreezeTimeout = 5 * time.Second

// refreezeEvery is how often Pause asks again for a freeze that has not
// completed (see Pause).
const refreezeEvery = 20 * time.Millisecond

// ErrFreezer is wrapped by the errors of a container started without a
// cgroup of its own, or on a host that has no freezer: it cannot pause.
var ErrFreezer = errors.New("no freezer cgroup")

// Pause freezes every process of the running container whose state
// directory is dir, through the freezer of its cgroup: on cgroup v1 the
// freezer hierarchy's freezer.state (FROZEN), on v2 cgroup.freeze (and
// "frozen 1" in cgroup.events). It returns once all of them are frozen,
// waiting at most FreezeTimeout; on a timeout it thaws them again and fails.
// The freeze covers the cgroups the container makes below its own, and a
// frozen process runs no code, so nothing in the container can thaw it:
// every process of the container (exec'd ones too) is in that cgroup, a
// child cgroup of a frozen cgroup stays frozen whatever is written in it,
// and a booted container that sees its own cgroup.freeze (its cgroup2
// subtree) can write it only while it is not frozen. The cgroup is found
// by its name, not from the init's /proc/PID/cgroup, which the container
// could point at a cgroup of its own below. Pausing a paused container is
// not an error.
func Pause(dir string) error {
	f, err := freezerOf(dir)
	if err != nil {
		return err
	}
	if err := f.set(true); err != nil {
		return err
	}
	deadline := time.Now().Add(FreezeTimeout)
	asked := time.Now()
	for delay := 100 * time.Microsecond; ; delay = min(2*delay, 10*time.Millisecond) {
		frozen, err := f.frozen()
		if err != nil || frozen {
			return err
		}
		if time.Since(asked) >= refreezeEvery {
			// The v1 freezer freezes each task once, when asked: a
			// shell that vforks meanwhile waits for its child, which
			// froze before its exec, in a sleep that the freezer
			// takes for frozen only if asked again (kernel 6.18: one
			// snapshot in 7 of a shell running commands in a loop
			// never froze).
			if err := f.set(true); err != nil {
				return err
			}
			asked = time.Now()
		}
		if time.Now().After(deadline) {
			if err := f.set(false); err != nil {
				return fmt.Errorf("container in %s did not freeze within %v, and thawing it failed: %w", dir, FreezeTimeout, err)
			}
			return fmt.Errorf("container in %s did not freeze within %v (a process in uninterruptible sleep?): thawed it again", dir, FreezeTimeout)
		}
		time.Sleep(delay)
	}
}

// Resume thaws the processes of the container whose state directory is dir,
// frozen by Pause. Resuming a container that is not paused is not an error.
func Resume(dir string) error {
	f, err := freezerOf(dir)
	if err != nil {
		return err
	}
	return f.set(false)
}

// Paused reports whether the container whose state directory is dir runs and
// is frozen (or being frozen). A container that does not run, or runs
// without a freezer, is not paused.
func Paused(dir string) (bool, error) {
	f, err := freezerOf(dir)
	if errors.Is(err, ErrNotRunning) || errors.Is(err, ErrFreezer) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return f.requested()
}

// freezer is the freezer of one container's cgroup.
type freezer struct {
	dir string
	v2  bool
}

// freezerOf finds the freezer of the running container of state directory
// dir.
func freezerOf(dir string) (*freezer, error) {
	st, err := LoadState(dir)
	if err != nil {
		return nil, err
	}
	if !st.Running {
		return nil, ErrNotRunning
	}
	if st.Spec.CgroupName == "" {
		return nil, fmt.Errorf("container in %s has no cgroup of its own: %w", dir, ErrFreezer)
	}
	// By name, not from /proc/PID/cgroup (see Pause).
	v2, v1, err := detectCgroups(cgroupRoot)
	if err != nil {
		return nil, err
	}
	d := filepath.Join(cgroupRoot, st.Spec.CgroupName)
	if !v2 {
		base, ok := v1["freezer"]
		if !ok {
			return nil, fmt.Errorf("container in %s: the host has no freezer hierarchy: %w", dir, ErrFreezer)
		}
		d = filepath.Join(base, st.Spec.CgroupName)
	}
	if _, err := os.Stat(d); err != nil {
		return nil, fmt.Errorf("container in %s: its cgroup %q is in no freezer hierarchy (started before acetate made one there?): %w", dir, st.Spec.CgroupName, ErrFreezer)
	}
	return &freezer{dir: d, v2: v2}, nil
}

// set freezes (or thaws) the cgroup.
func (f *freezer) set(frozen bool) error {
	file, value := "freezer.state", "THAWED"
	if f.v2 {
		file, value = "cgroup.freeze", "0"
	}
	if frozen {
		value = map[bool]string{false: "FROZEN", true: "1"}[f.v2]
	}
	return writeCgroupFile(f.dir, file, value)
}

// frozen reports whether every process of the cgroup is frozen.
func (f *freezer) frozen() (bool, error) {
	if f.v2 {
		return f.field("cgroup.events", "frozen 1")
	}
	return f.field("freezer.state", "FROZEN")
}

// requested reports whether the cgroup is frozen or freezing.
func (f *freezer) requested() (bool, error) {
	if f.v2 {
		return f.field("cgroup.freeze", "1")
	}
	state, err := f.read("freezer.state")
	return state == "FROZEN" || state == "FREEZING", err
}

// field reports whether the cgroup file holds the line want.
func (f *freezer) field(file, want string) (bool, error) {
	data, err := f.read(file)
	for _, line := range strings.Split(data, "\n") {
		if line == want {
			return true, err
		}
	}
	return false, err
}

func (f *freezer) read(file string) (string, error) {
	data, err := os.ReadFile(filepath.Join(f.dir, file))
	if err != nil {
		return "", fmt.Errorf("failed to read the container's freezer: %w", err)
	}
	return strings.TrimSpace(string(data)), nil
}

// frozenByFile, in a state directory, names the process that froze the
// container for a while (see Freeze): its pid and start time.
const frozenByFile = "frozen-by"

// Freeze pauses the container of state directory dir for this process
// only, as a snapshot's capture or a move's last push needs, and returns
// what thaws it. Should this process die before it thaws it (kill -9 in the
// middle), the container does not stay frozen for good: the next
// ThawOrphaned (ps, inspect, stop) finds its freezer gone and thaws it. A
// container paused by Pause stays paused.
func Freeze(dir string) (thaw func() error, err error) {
	owner, err := processStart(os.Getpid())
	if err != nil {
		return nil, err
	}
	if err := writeState(filepath.Join(dir, frozenByFile), []byte(owner)); err != nil {
		return nil, err
	}
	if err := Pause(dir); err != nil {
		os.Remove(filepath.Join(dir, frozenByFile))
		return nil, err
	}
	return func() error {
		err := Resume(dir)
		if err == nil {
			os.Remove(filepath.Join(dir, frozenByFile))
		}
		return err
	}, nil
}

// ThawOrphaned thaws the container of dir when a process that froze it
// with Freeze has died without thawing it, and reports whether it did.
func ThawOrphaned(dir string) (bool, error) {
	owner, err := os.ReadFile(filepath.Join(dir, frozenByFile))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	pid, _, _ := strings.Cut(string(owner), " ")
	n, _ := strconv.Atoi(pid)
	if now, err := processStart(n); err == nil && now == string(owner) {
		return false, nil // it still works on the container
	}
	if err := Resume(dir); err != nil && !errors.Is(err, ErrNotRunning) {
		return false, err
	}
	return true, os.Remove(filepath.Join(dir, frozenByFile))
}

// processStart identifies process pid by its pid and start time (field 22
// of /proc/PID/stat), which a recycled pid does not share.
func processStart(pid int) (string, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", err
	}
	// The command name, field 2, may hold spaces: count from its end.
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	if len(f) < 20 {
		return "", fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	return fmt.Sprintf("%d %s", pid, f[19]), nil
}
