package runtime

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/acetate/acetate/internal/flock"
	"golang.org/x/sys/unix"
)

// cgroupRoot is where cgroup hierarchies are mounted on the host. (A
// variable for tests only, which point it at a hybrid host's v2 tree.)
var cgroupRoot = "/sys/fs/cgroup"

// cgroupV1Controllers are the v1 controllers a container gets a cgroup in:
// the three that carry limits, cpuacct for CPU usage, devices for the
// devices a container may open (see allowedDevices), and freezer for Pause.
var cgroupV1Controllers = []string{"memory", "pids", "cpu", "cpuacct", "devices", "freezer"}

// cgroupPeriodUS is the CFS period used for CPU limits, as Docker uses.
const cgroupPeriodUS = 100000

// cgroup is one container's cgroups: a directory per used hierarchy.
type cgroup struct {
	v2 bool
	// dirs maps a controller name ("memory", ...) to its directory. On v2
	// every controller maps to the same directory. A booted container on
	// a hybrid host also has "unified": its cgroup in the v2 hierarchy
	// that holds no controllers there (see addBoot).
	dirs map[string]string
	// payload, on v2, is the cgroup below the limited one that a booted
	// container's processes are in (see addBoot).
	payload string
}

// unifiedKey is the key of cgroup.dirs for a hybrid host's v2 hierarchy.
const unifiedKey = "unified"

// detectCgroups reports whether root (normally /sys/fs/cgroup) is a cgroup v2
// unified hierarchy with controllers, and otherwise lists the v1 controller
// directories present below it.
func detectCgroups(root string) (v2 bool, v1 map[string]string, err error) {
	if data, err := os.ReadFile(filepath.Join(root, "cgroup.controllers")); err == nil {
		if len(bytes.TrimSpace(data)) > 0 {
			return true, nil, nil
		}
	}
	v1 = map[string]string{}
	for _, c := range cgroupV1Controllers {
		dir := filepath.Join(root, c)
		if _, err := os.Stat(filepath.Join(dir, "cgroup.procs")); err == nil {
			if real, err := filepath.EvalSymlinks(dir); err == nil {
				dir = real
			}
			v1[c] = dir
		}
	}
	if len(v1) == 0 {
		return false, nil, fmt.Errorf("no cgroup v2 controllers and no cgroup v1 hierarchies found under %s", root)
	}
	return false, v1, nil
}

// createCgroup creates the cgroups named name below root and writes the
// limits into them; with boot, also those of a booted container (see
// addBoot). Cgroups of that name left by a run that did not end cleanly (its
// supervisor was killed, the host crashed) are removed first, those a
// booted container's init made below them too. On error nothing is left
// behind.
func createCgroup(root, name string, lim Limits, boot bool) (*cgroup, error) {
	v2, v1, err := detectCgroups(root)
	if err != nil {
		return nil, err
	}
	cgroupAt(root, name, true, v2, v1).remove(0) // none there: a failed rmdir or two
	cg := &cgroup{v2: v2, dirs: map[string]string{}}
	if v2 {
		err = cg.createV2(root, name, lim)
	} else {
		err = cg.createV1(v1, name, lim)
	}
	if err == nil && boot {
		err = cg.addBoot(root, name)
	}
	if err != nil {
		cg.remove(0)
		return nil, fmt.Errorf("failed to create cgroup %s: %w", name, err)
	}
	return cg, nil
}

func (cg *cgroup) createV1(hier map[string]string, name string, lim Limits) error {
	for _, c := range cgroupV1Controllers {
		base, ok := hier[c]
		if !ok {
			continue
		}
		if c == "devices" {
			prepareDevicesParentV1(base, name)
		}
		dir := filepath.Join(base, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		cg.dirs[c] = dir
	}
	if dir, ok := cg.dirs["devices"]; ok {
		if err := limitDevicesV1(dir); err != nil {
			return err
		}
	}
	return cg.writeLimits(lim)
}

// writeLimits writes lim into the cgroup's files. A zero Memory or CPUs,
// or a negative Pids, writes "no limit" where the file exists, so that the
// limits of a running container can be changed and lifted too (see
// [UpdateLimits]).
func (cg *cgroup) writeLimits(lim Limits) error {
	if err := cg.writeMemory(lim.Memory); err != nil {
		return err
	}
	if err := cg.writePids(lim); err != nil {
		return err
	}
	return cg.writeCPUs(lim.CPUs)
}

// writeMemory writes the memory limit, swap included: where the kernel
// accounts swap, the same value forbids swap (v2: swap.max 0; v1: memsw,
// lifted first so that it is never below the limit).
func (cg *cgroup) writeMemory(mem int64) error {
	dir, ok := cg.dirs["memory"]
	if !ok {
		return missingController("memory", mem > 0)
	}
	set := mem > 0
	if cg.v2 {
		if err := writeLimit(dir, "memory.max", limitValue(mem, "max"), set); err != nil {
			return err
		}
		swap := "max"
		if set {
			swap = "0"
		}
		return writeLimit(dir, "memory.swap.max", swap, false)
	}
	v := limitValue(mem, "-1")
	for _, f := range [][2]string{{"memory.memsw.limit_in_bytes", "-1"}, {"memory.limit_in_bytes", v}, {"memory.memsw.limit_in_bytes", v}} {
		if err := writeLimit(dir, f[0], f[1], set && f[0] == "memory.limit_in_bytes"); err != nil {
			return err
		}
	}
	return nil
}

// limitValue is n in decimal when positive, else none (the file's word for
// no limit).
func limitValue(n int64, none string) string {
	if n <= 0 {
		return none
	}
	return strconv.FormatInt(n, 10)
}

// writePids writes the pids limit; the default one only where the pids
// controller is there.
func (cg *cgroup) writePids(lim Limits) error {
	dir, ok := cg.dirs["pids"]
	if !ok {
		return missingController("pids", lim.Pids > 0)
	}
	return writeLimit(dir, "pids.max", limitValue(lim.pidsMax(), "max"), lim.Pids > 0)
}

// writeCPUs writes the CPU bandwidth limit.
func (cg *cgroup) writeCPUs(cpus float64) error {
	dir, ok := cg.dirs["cpu"]
	if !ok {
		return missingController("cpu", cpus > 0)
	}
	set, quota := cpus > 0, int64(0)
	if set {
		quota = cpuQuota(cpus)
	}
	if cg.v2 {
		return writeLimit(dir, "cpu.max", fmt.Sprintf("%s %d", limitValue(quota, "max"), cgroupPeriodUS), set)
	}
	if err := writeLimit(dir, "cpu.cfs_period_us", strconv.Itoa(cgroupPeriodUS), set); err != nil {
		return err
	}
	return writeLimit(dir, "cpu.cfs_quota_us", limitValue(quota, "-1"), set)
}

// missingController fails when a limit is set for a controller this host
// lacks; without a limit, the controller is not needed.
func missingController(name string, set bool) error {
	if set {
		return fmt.Errorf("%s limit set but no %s controller", name, name)
	}
	return nil
}

// writeLimit writes value to the cgroup file; one that is not set (a
// "no limit" value) is skipped where the file does not exist.
func writeLimit(dir, file, value string, set bool) error {
	if !set {
		if _, err := os.Stat(filepath.Join(dir, file)); err != nil {
			return nil
		}
	}
	return writeCgroupFile(dir, file, value)
}

func cpuQuota(cpus float64) int64 {
	q := int64(cpus*cgroupPeriodUS + 0.5)
	if q < 1000 {
		q = 1000 // the kernel's minimum quota is 1 ms
	}
	return q
}

func (cg *cgroup) createV2(root, name string, lim Limits) error {
	avail, err := os.ReadFile(filepath.Join(root, "cgroup.controllers"))
	if err != nil {
		return err
	}
	var enable []string
	for _, c := range []string{"memory", "pids", "cpu"} {
		if containsField(string(avail), c) {
			enable = append(enable, "+"+c)
		}
	}
	// Enable the controllers on the way down, so the leaf gets them.
	parent := root
	for _, part := range strings.Split(filepath.Clean(name), "/") {
		if len(enable) > 0 {
			if err := writeCgroupFile(parent, "cgroup.subtree_control", strings.Join(enable, " ")); err != nil {
				return err
			}
		}
		parent = filepath.Join(parent, part)
		if err := os.Mkdir(parent, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
	}
	dir := parent
	for _, c := range cgroupV1Controllers {
		cg.dirs[c] = dir
	}
	if err := cg.writeLimits(lim); err != nil {
		return err
	}
	var sfs unix.Statfs_t
	if unix.Statfs(dir, &sfs) == nil && sfs.Type == unix.CGROUP2_SUPER_MAGIC {
		return limitDevicesV2(dir) // (a plain directory standing for one in tests gets none)
	}
	return nil
}

func containsField(s, f string) bool {
	for _, x := range strings.Fields(s) {
		if x == f {
			return true
		}
	}
	return false
}

// addBoot gives a booted container the cgroup2 subtree that its init
// manages its services in, and that its cgroup namespace is rooted at
// (systemd 252 boots on a cgroup2 hierarchy alone, also on a hybrid host).
// What it must not reach are its limits: on a v2 host they are written in
// the container's cgroup, and its processes go into "payload" below it,
// as systemd-nspawn does, so that the limit files are above the
// namespace's root; on a hybrid host the limits are in the v1 hierarchies,
// which the container never sees, and its v2 cgroup (which has no
// controllers there) is made beside them, under the same name.
func (cg *cgroup) addBoot(root, name string) error {
	if cg.v2 {
		cg.payload = filepath.Join(cg.dirs["memory"], "payload")
		return os.Mkdir(cg.payload, 0o755)
	}
	unified := filepath.Join(root, unifiedKey)
	var sfs unix.Statfs_t
	if err := unix.Statfs(unified, &sfs); err != nil || sfs.Type != unix.CGROUP2_SUPER_MAGIC {
		return fmt.Errorf("no cgroup2 hierarchy at %s: a booted container needs one", unified)
	}
	dir := filepath.Join(unified, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	cg.dirs[unifiedKey] = dir
	return nil
}

// joinDirs returns the directories a container's processes are placed in.
func (cg *cgroup) joinDirs() []string {
	if cg.payload != "" {
		return []string{cg.payload}
	}
	return cg.uniqueDirs()
}

// uniqueDirs returns the cgroup's distinct directories.
func (cg *cgroup) uniqueDirs() []string {
	seen := map[string]bool{}
	var out []string
	for _, c := range append(cgroupV1Controllers, unifiedKey) {
		if d, ok := cg.dirs[c]; ok && !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out
}

// join moves process pid (all its threads) into the cgroup.
func (cg *cgroup) join(pid int) error {
	for _, d := range cg.joinDirs() {
		if err := writeCgroupFile(d, "cgroup.procs", strconv.Itoa(pid)); err != nil {
			return fmt.Errorf("failed to move pid %d into cgroup: %w", pid, err)
		}
	}
	return nil
}

// remove deletes the cgroup directories and every cgroup made below them,
// retrying for up to wait while the kernel finishes tearing down exiting
// processes.
func (cg *cgroup) remove(wait time.Duration) error {
	deadline := time.Now().Add(wait)
	delay := time.Millisecond
	var last error
	for _, d := range cg.uniqueDirs() {
		for {
			err := removeCgroupTree(d)
			if err == nil || errors.Is(err, os.ErrNotExist) {
				last = nil
				break
			}
			last = fmt.Errorf("failed to remove cgroup %s: %w", d, err)
			if time.Now().After(deadline) {
				break
			}
			time.Sleep(delay)
			delay = min(2*delay, 50*time.Millisecond)
		}
		if last != nil {
			return last
		}
	}
	return nil
}

// removeCgroupTree removes the cgroup dir, and when that fails, the cgroups
// below it first, deepest first: a container whose processes could make
// sub-cgroups leaves none behind. (A cgroup directory holds only interface
// files and cgroups; there are no symbolic links to follow.)
func removeCgroupTree(dir string) error {
	err := os.Remove(dir)
	if err == nil || errors.Is(err, os.ErrNotExist) {
		return nil
	}
	entries, rerr := os.ReadDir(dir)
	if rerr != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() {
			if err := removeCgroupTree(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return os.Remove(dir)
}

// cpuUsage returns the CPU time used by the cgroup's processes so far.
func (cg *cgroup) cpuUsage() (time.Duration, error) {
	if cg.v2 {
		data, err := os.ReadFile(filepath.Join(cg.dirs["cpu"], "cpu.stat"))
		if err != nil {
			return 0, err
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 2 && f[0] == "usage_usec" {
				us, err := strconv.ParseInt(f[1], 10, 64)
				return time.Duration(us) * time.Microsecond, err
			}
		}
		return 0, errors.New("no usage_usec in cpu.stat")
	}
	dir, ok := cg.dirs["cpuacct"]
	if !ok {
		return 0, errors.New("no cpuacct controller")
	}
	data, err := os.ReadFile(filepath.Join(dir, "cpuacct.usage"))
	if err != nil {
		return 0, err
	}
	ns, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	return time.Duration(ns), err
}

// oomKills returns how many processes of the cgroup the kernel's OOM
// killer has killed (v2 memory.events, v1 memory.oom_control: oom_kill,
// Linux 4.13+); 0 when it cannot tell.
func (cg *cgroup) oomKills() int64 {
	dir, ok := cg.dirs["memory"]
	if !ok {
		return 0
	}
	file := "memory.oom_control"
	if cg.v2 {
		file = "memory.events"
	}
	data, _ := os.ReadFile(filepath.Join(dir, file))
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// UpdateLimits changes the limits of the running container whose state
// directory is dir, in its cgroup files: the kernel applies them at once
// (a memory limit below what the container uses makes the kernel reclaim,
// and fails on cgroup v1 when it cannot). It fails with [ErrNotRunning]
// when the container does not run, and for one started without a cgroup.
func UpdateLimits(dir string, lim Limits) error {
	st, err := LoadState(dir)
	if err != nil {
		return err
	}
	if !st.Running {
		return ErrNotRunning
	}
	if st.Spec.CgroupName == "" {
		return fmt.Errorf("container in %s has no cgroup of its own: its limits cannot change", dir)
	}
	cg, err := openCgroup(cgroupRoot, st.Spec.CgroupName, st.Spec.Boot)
	if err != nil {
		return fmt.Errorf("failed to find the container's cgroup: %w", err)
	}
	unlock, err := cg.lockPids()
	if err != nil {
		return err
	}
	defer unlock()
	if err := cg.writeLimits(lim); err != nil {
		return fmt.Errorf("failed to update limits: %w", err)
	}
	return nil
}

// openCgroup returns the cgroups of the running container named name
// below root (boot: a booted one's, see addBoot).
func openCgroup(root, name string, boot bool) (*cgroup, error) {
	v2, v1, err := detectCgroups(root)
	if err != nil {
		return nil, err
	}
	return cgroupAt(root, name, boot, v2, v1), nil
}

// cgroupAt returns the directories of the cgroups named name below root, on
// a host whose hierarchies detectCgroups described as v2 and v1.
func cgroupAt(root, name string, boot, v2 bool, v1 map[string]string) *cgroup {
	cg := &cgroup{v2: v2, dirs: map[string]string{}}
	for _, c := range cgroupV1Controllers {
		base, ok := v1[c]
		if v2 {
			base, ok = root, true
		}
		if ok {
			cg.dirs[c] = filepath.Join(base, name)
		}
	}
	switch {
	case boot && v2:
		cg.payload = filepath.Join(root, name, "payload")
	case boot:
		cg.dirs[unifiedKey] = filepath.Join(root, unifiedKey, name)
	}
	return cg
}

// Helpers outside the container's limits: an init or exec helper (a Go
// process of several threads) is moved into the container's cgroups only
// for the instant between its last preparation and the fork of the
// command, so that the command starts inside them, and out again, into
// this process's own, once the command runs (see startHelper). Memory it
// allocated before is charged to this process's cgroup. For that instant
// its threads would count against the pids limit, and a limit close to
// what the container uses (or below the helper's threads: --pids 3) would
// refuse the fork: the limit is raised by the helper's threads (and
// helperThreadSlack) while it is inside, under the pids cgroup's lock (see
// lockPids), and put back before it leaves. For that instant the command
// may pass the container's limit by the slack.

// helperThreadSlack is how many threads a helper may start while it is in
// the container's cgroups (see allowHelper).
const helperThreadSlack = 4

// allowHelper raises the pids limit by the tasks of helper pid, which has
// just joined the cgroup, and returns what puts it back. The caller holds
// lockPids.
func (cg *cgroup) allowHelper(pid int) (restore func() error, err error) {
	dir, ok := cg.dirs["pids"]
	if !ok {
		return func() error { return nil }, nil
	}
	data, err := os.ReadFile(filepath.Join(dir, "pids.max"))
	if errors.Is(err, os.ErrNotExist) { // a v2 hierarchy without the controller
		return func() error { return nil }, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read the pids limit: %w", err)
	}
	limit := strings.TrimSpace(string(data))
	n, err := strconv.ParseInt(limit, 10, 64)
	if err != nil { // "max"
		return func() error { return nil }, nil
	}
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return nil, fmt.Errorf("failed to count the helper's threads: %w", err)
	}
	// And a few more for threads the Go runtime may start meanwhile
	// (one it cannot start is fatal to the helper): the command may pass
	// the limit by that much, only while the helper is inside.
	if err := writeCgroupFile(dir, "pids.max", strconv.FormatInt(n+int64(len(tasks))+helperThreadSlack, 10)); err != nil {
		return nil, err
	}
	return func() error { return writeCgroupFile(dir, "pids.max", limit) }, nil
}

// leave moves process pid out of the container's cgroups into the cgroups
// of this process, in every hierarchy the container's are in.
func (cg *cgroup) leave(pid int) error {
	own, err := cgroupOf(cgroupRoot, os.Getpid())
	if err != nil {
		return fmt.Errorf("failed to find this process's cgroups: %w", err)
	}
	moved := map[string]bool{}
	for c := range cg.dirs {
		d, ok := own.dirs[c]
		if !ok || moved[d] {
			continue
		}
		moved[d] = true
		if err := writeCgroupFile(d, "cgroup.procs", strconv.Itoa(pid)); err != nil {
			return fmt.Errorf("failed to move helper %d out of the container's cgroup: %w", pid, err)
		}
	}
	return nil
}

// lockPids takes an exclusive lock on the container's pids cgroup
// directory for as long as its limit may be raised for a helper or is
// being changed, and returns what releases it.
func (cg *cgroup) lockPids() (func(), error) {
	dir, ok := cg.dirs["pids"]
	if !ok {
		return func() {}, nil
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("failed to lock the pids limit: %w", err)
	}
	err = flock.Lock(fd, unix.LOCK_EX)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("failed to lock the pids limit: %w", err)
	}
	return func() { unix.Close(fd) }, nil
}

// cgroupOf reads /proc/<pid>/cgroup and returns the directories of the
// process's cgroups in the hierarchies a container uses, below root.
func cgroupOf(root string, pid int) (*cgroup, error) {
	v2, v1, err := detectCgroups(root)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return nil, err
	}
	cg := &cgroup{v2: v2, dirs: map[string]string{}}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		// hierarchy-ID:controller-list:path
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		if f[0] == "0" {
			if v2 {
				for _, c := range cgroupV1Controllers {
					cg.dirs[c] = filepath.Join(root, f[2])
				}
			} else {
				cg.dirs[unifiedKey] = filepath.Join(root, unifiedKey, f[2])
			}
			continue
		}
		for _, c := range strings.Split(f[1], ",") {
			if base, ok := v1[c]; ok {
				cg.dirs[c] = filepath.Join(base, f[2])
			}
		}
	}
	return cg, nil
}

func writeCgroupFile(dir, file, value string) error {
	p := filepath.Join(dir, file)
	if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
		return fmt.Errorf("failed to write %q to %s: %w", value, p, err)
	}
	return nil
}
