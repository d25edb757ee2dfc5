package bench

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// SystemdTree is where .ci/setup caches a Debian bookworm tree that boots
// systemd (with one service enabled); the boot scenario boots it.
const SystemdTree = "/var/cache/acetate-test/systemd"

// Boot scenario cases.
const (
	caseBoot = "start to is-system-running: running (systemd)"
	caseStop = "stop until its end is recorded (systemd)"
)

// bootGoal is the most an idle booted systemd container may cost, its
// tool's processes for it included (issue 14: 11 MB, taken as MiB), with
// at least bootGoalCount booted at once: the reference figures
// are for 10 (one alone shares no page of its OS with another, and costs
// twice as much under every tool).
const (
	bootGoal      = 11 << 20
	bootGoalCount = 10
)

// runningTimeout bounds one wait for a booted system to be running, and
// settleTimeout the wait for all of those of a memory case: on this host
// some of 50 booted at once may never settle (see inotifyLimit).
const (
	runningTimeout = 5 * time.Minute
	settleTimeout  = 3 * time.Minute
)

// benchBoot boots the systemd tree's own init in containers: acetate (the
// overlay and the fuse driver) against systemd-nspawn -b and lxc-start,
// each from an overlay of its own over the same tree. It measures the time
// from the start to systemctl is-system-running --wait answering
// "running", the time a stop takes, and the memory (Pss) of idle booted
// containers, 1, 10 and 50 at once, with every process their tool keeps
// for them. The page cache stays warm: nothing is dropped.
func benchBoot(e *env) error {
	if _, err := os.Lstat(filepath.Join(SystemdTree, "sbin/init")); err != nil {
		for _, cas := range []string{caseBoot, caseStop} {
			e.report.skip("boot", cas, "all", "s", "no systemd tree to boot at "+SystemdTree+" (.ci/setup makes it)")
		}
		return nil
	}
	e.logf("boot: warm cache only, the page cache is not dropped (every boot reads the same tree)")
	a, err := e.acetate()
	if err != nil {
		return err
	}
	tpl, err := a.template(e, SystemdTree)
	if err != nil {
		return err
	}
	if err := e.evictObjects(a); err != nil {
		return err
	}
	cli := ""
	if e.opts.Command != "" {
		if cli, err = e.copyCommand(); err != nil {
			return err
		}
	}
	peers := []bootPeer{
		e.acetateBootPeer(tpl, "overlay", cli), e.acetateBootPeer(tpl, "fuse", cli),
		e.nspawnBootPeer(SystemdTree), e.lxcBootPeer(SystemdTree),
	}
	if err := e.bootTimes(peers); err != nil {
		return err
	}
	e.addLatencyChart("boot", caseBoot, "boot-time.svg", "boot")
	return e.bootMemory(peers)
}

// evictObjects drops the store's objects, which the run's publish has just
// written, from the page cache (posix_fadvise DONTNEED on those files
// only), so that acetate's containers find their files cached as the
// peers find the tree they share: read from disk. This kernel caches
// what a write made in large folios, and a process that maps a library
// so cached maps the whole folio: journald held 1 MiB more of libcrypto
// under acetate than under LXC, and 192 KiB, as under LXC, once the object
// was read back from disk (2026-12-01).
func (e *env) evictObjects(a *acetateStore) error {
	e.logf("boot: the store's objects, just written, are evicted from the page cache (those files only), so that they are read from disk as the peers' tree was")
	return evictFiles(a.st.Layers.ObjectsDir())
}

// evictFiles drops the regular files below dir from the page cache. A page
// still dirty stays: the store's objects are durable once published (its
// commit syncs the filesystem).
func evictFiles(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("evict %s: %w", p, err)
		}
		defer unix.Close(fd)
		return unix.Fadvise(fd, 0, 0, unix.FADV_DONTNEED)
	})
}

// bootTimes boots and stops every peer Options.Boots times (20 by
// default), interleaved round by round, and records both times; a full run
// boots each once more first, unrecorded, to warm the page cache.
func (e *env) bootTimes(peers []bootPeer) error {
	boots := e.opts.Boots
	if boots <= 0 {
		boots = e.rounds(20)
	}
	bootS := make([][]float64, len(peers))
	stopS := make([][]float64, len(peers))
	failed := make([]string, len(peers))
	first := 0
	if !e.opts.Quick {
		first = -1 // round -1 warms the page cache and is not recorded
	}
	for r := first; r < boots; r++ {
		for k := range peers {
			i := (k + r + len(peers)) % len(peers)
			if peers[i].missing != "" || failed[i] != "" {
				continue
			}
			if err := e.ctx.Err(); err != nil {
				return err
			}
			b, s, err := e.bootOnce(peers[i], r+1)
			if err != nil {
				failed[i] = err.Error()
				e.logf("boot: %s failed: %v", peers[i].name, err)
				continue
			}
			if r >= 0 {
				bootS[i] = append(bootS[i], b)
				stopS[i] = append(stopS[i], s)
			}
		}
	}
	for i, p := range peers {
		for _, c := range []struct {
			cas     string
			samples []float64
		}{{caseBoot, bootS[i]}, {caseStop, stopS[i]}} {
			switch {
			case p.missing != "":
				e.report.skip("boot", c.cas, p.name, "s", p.missing)
			case failed[i] != "":
				e.report.skip("boot", c.cas, p.name, "s", "failed: "+firstLine(failed[i]))
			default:
				e.report.add(newFigure("boot", c.cas, p.name, "s", c.samples))
			}
		}
	}
	e.bootGoalNote()
	return nil
}

// bootOnce boots one container of p until it is running, then stops it,
// and returns both times in seconds.
func (e *env) bootOnce(p bootPeer, id int) (boot, stop float64, err error) {
	t0 := time.Now()
	m, err := p.boot(id)
	if err != nil {
		return 0, 0, err
	}
	defer m.remove()
	ctx, cancel := context.WithTimeout(e.ctx, runningTimeout)
	defer cancel()
	if err := waitRunning(ctx, m); err != nil {
		return 0, 0, err
	}
	boot = time.Since(t0).Seconds()
	t1 := time.Now()
	if err := m.stop(); err != nil {
		return 0, 0, err
	}
	return boot, time.Since(t1).Seconds(), nil
}

// degradedError says a booted system came up "degraded", with failed units.
type degradedError struct{ units []string }

func (d *degradedError) Error() string {
	return "system degraded; failed units: " + strings.Join(d.units, " ")
}

// waitRunning waits until systemctl is-system-running --wait, run inside,
// answers "running"; before systemd's bus is up it fails, and is asked
// again. "degraded" is a *degradedError naming the failed units.
func waitRunning(ctx context.Context, m *booted) error {
	for {
		out, err := m.exec(ctx, "systemctl", "is-system-running", "--wait")
		switch state := strings.TrimSpace(out); state {
		case "running":
			return nil
		case "degraded":
			out, _ := m.exec(ctx, "systemctl", "--failed", "--no-legend", "--plain")
			var units []string
			for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
				if f := strings.Fields(l); len(f) > 0 {
					units = append(units, f[0])
				}
			}
			return &degradedError{units: units}
		}
		if ctx.Err() != nil {
			return fmt.Errorf("not running: %s (%v; %w)", firstLine(out), err, ctx.Err())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// bootCounts are how many containers run at once in the memory case.
func (e *env) bootCounts() []int {
	switch {
	case len(e.opts.BootCounts) > 0:
		return e.opts.BootCounts
	case e.opts.Quick:
		return []int{1, 2}
	}
	return []int{1, 10, 50}
}

// bootMemory boots n containers of each peer at once, lets them idle, and
// records each one's Pss: the sum over its processes and its tool's
// processes for it. For one container it also records each process.
func (e *env) bootMemory(peers []bootPeer) error {
	restore, err := e.raiseInotify()
	if err != nil {
		return err
	}
	defer restore()
	c := chart{file: "boot-memory.svg", title: "idle booted systemd container: Pss per container",
		xLabel: "containers booted at once", yLabel: "bytes (Pss)", logX: true}
	for _, p := range peers {
		s := series{name: p.name}
		perBoot := 0 // inotify instances one booted container took
		for _, n := range e.bootCounts() {
			cas := bootMemoryCase(n)
			if p.missing != "" {
				e.report.skip("boot", cas, p.name, "B", p.missing)
				continue
			}
			if err := e.ctx.Err(); err != nil {
				return err
			}
			if free := inotifyFree(); perBoot > 0 && n*perBoot > free {
				// Booting them would make every init on the host (other
				// users' containers too) fail to watch files.
				e.report.skip("boot", cas, p.name, "B", fmt.Sprintf("not run: %d booted systemd take about %d inotify instances, %d of root's are free here (fs.inotify.max_user_instances %d, for all of root's processes on the host; --inotify-instances raises it for the run)",
					n, n*perBoot, free, inotifyMax()))
				continue
			}
			r, err := e.idleMemory(p, n, 1000*n)
			if err != nil {
				e.logf("boot: %s, %d at once: %v", p.name, n, err)
				e.report.skip("boot", cas, p.name, "B", "failed: "+firstLine(err.Error()))
				continue
			}
			if n == 1 {
				perBoot = r.inotify
			}
			// A container whose processes had all ended by the time it
			// was measured (its init died) counts 0: it is left out.
			per := slices.DeleteFunc(r.per, func(v float64) bool { return v == 0 })
			if len(per) == 0 {
				e.report.skip("boot", cas, p.name, "B", "failed: every container had ended before it was measured")
				continue
			}
			f := newFigure("boot", cas, p.name, "B", per)
			e.report.add(f)
			if ended := len(r.per) - len(per); len(r.degraded)+len(r.unsettled)+ended > 0 {
				e.report.note("boot", fmt.Sprintf("%s, %d booted at once, measured as they were: %d came up degraded (failed units, in how many: %s), %d had not settled after %v (state, in how many: %s), %d had ended; %s",
					p.name, n, len(r.degraded), countNames(r.degraded), len(r.unsettled), settleTimeout, countNames(r.unsettled), ended, inotifyLimit()))
			}
			s.points = append(s.points, [2]float64{float64(n), f.Median})
			if n == 1 {
				e.addBreakdown(p.name, r.first)
			}
		}
		if len(s.points) > 0 {
			c.series = append(c.series, s)
		}
	}
	if len(c.series) > 0 {
		e.report.charts = append(e.report.charts, c)
	}
	e.memoryGoalNote()
	return nil
}

// idleResult is what idleMemory measured.
type idleResult struct {
	per   []float64 // Pss of each container
	first []proc    // the processes of the first
	// degraded holds the failed units of each container that came up
	// degraded, unsettled the state of each that had not settled.
	degraded, unsettled [][]string
	// inotify is how many inotify instances the first one holds.
	inotify int
}

// idleMemory boots n containers of p, waits until all are running (or
// degraded, or settleTimeout has passed) and idle, and measures each one's
// Pss. The containers are numbered from id.
func (e *env) idleMemory(p bootPeer, n, id int) (*idleResult, error) {
	var ms []*booted
	defer func() { stopAll(ms) }()
	for i := range n {
		m, err := p.boot(id + i)
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
	}
	r := &idleResult{}
	ctx, cancel := context.WithTimeout(e.ctx, settleTimeout)
	defer cancel()
	for _, m := range ms {
		var d *degradedError
		err := waitRunning(ctx, m)
		switch {
		case errors.As(err, &d):
			r.degraded = append(r.degraded, d.units)
		case err != nil && e.ctx.Err() == nil && ctx.Err() != nil:
			r.unsettled = append(r.unsettled, []string{systemState(e.ctx, m)})
		case err != nil:
			return nil, err
		}
	}
	if roots, err := ms[0].roots(); err == nil {
		r.inotify = inotifyInstances(rootProcesses(roots))
	}
	idle := 5 * time.Second
	if e.opts.Quick {
		idle = time.Second
	}
	time.Sleep(idle) // let the last units settle (journald, logind)
	// A process that serves several containers (acetate's supervisor and
	// FUSE server, one each per store) counts its share in each.
	all := make([]map[int]string, len(ms))
	users := map[int]int64{}
	for i, m := range ms {
		roots, err := m.roots()
		if err != nil {
			return nil, err
		}
		all[i] = roots
		for pid := range roots {
			users[pid]++
		}
	}
	for i, roots := range all {
		ps := processes(rootProcesses(roots))
		var sum int64
		for k, pr := range ps {
			if name := roots[pr.pid]; name != "" {
				ps[k].name = name
			}
			sum += pr.pss / max(users[pr.pid], 1)
		}
		r.per = append(r.per, float64(sum))
		if i == 0 {
			r.first = ps
		}
	}
	return r, nil
}

// rootProcesses are the processes of a booted's roots: the trees of those
// named "", the others alone.
func rootProcesses(roots map[int]string) []int {
	var trees, alone []int
	for pid, name := range roots {
		if name == "" {
			trees = append(trees, pid)
		} else {
			alone = append(alone, pid)
		}
	}
	return append(procTree(trees...), alone...)
}

// systemState is what systemctl is-system-running answers at once (its
// first line), or why it did not.
func systemState(ctx context.Context, m *booted) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := m.exec(ctx, "systemctl", "is-system-running")
	if s := firstLine(out); s != "" {
		return s
	}
	return fmt.Sprintf("no answer (%v)", err)
}

// countNames lists the names in each list of lists (the failed units of
// each system), with the number of lists each is in, most first.
func countNames(lists [][]string) string {
	counts := map[string]int{}
	var names []string
	for _, list := range lists {
		for _, u := range list {
			if counts[u] == 0 {
				names = append(names, u)
			}
			counts[u]++
		}
	}
	slices.SortStableFunc(names, func(a, b string) int { return counts[b] - counts[a] })
	parts := make([]string, len(names))
	for i, u := range names {
		parts[i] = fmt.Sprintf("%s %d", u, counts[u])
	}
	return strings.Join(parts, ", ")
}

// inotifyLimit explains the usual cause of degraded systems when many boot
// at once: systemd, journald, logind, dbus and agetty each take inotify
// instances, which count against one limit for all of root's processes on
// the host, whatever container they run in.
func inotifyLimit() string {
	return fmt.Sprintf("the usual cause: fs.inotify.max_user_instances (%d here) is shared by all of root's processes on the host, and a booted systemd takes about 7 (\"Too many open files\" in its log); --inotify-instances raises it for the run",
		inotifyMax())
}

// inotifyMaxFile is the sysctl fs.inotify.max_user_instances.
const inotifyMaxFile = "/proc/sys/fs/inotify/max_user_instances"

// raiseInotify raises fs.inotify.max_user_instances to
// Options.InotifyInstances when that is higher, says so in the log and the
// report, and returns what puts the old value back.
func (e *env) raiseInotify() (restore func(), err error) {
	was, want := inotifyMax(), e.opts.InotifyInstances
	if want <= was {
		return func() {}, nil
	}
	e.logf("boot: raising fs.inotify.max_user_instances from %d to %d for the memory case (--inotify-instances); it is put back at its end", was, want)
	if err := setInotifyMax(want); err != nil {
		return nil, err
	}
	e.report.note("boot", fmt.Sprintf("fs.inotify.max_user_instances was %d on the host and raised to %d for the memory case, for every tool alike (--inotify-instances), then put back", was, want))
	return func() {
		if err := setInotifyMax(was); err != nil {
			e.logf("boot: %v", err)
			return
		}
		e.logf("boot: fs.inotify.max_user_instances is %d again", was)
	}, nil
}

// setInotifyMax sets fs.inotify.max_user_instances to n.
func setInotifyMax(n int) error {
	if err := os.WriteFile(inotifyMaxFile, []byte(strconv.Itoa(n)), 0o644); err != nil {
		return fmt.Errorf("set fs.inotify.max_user_instances to %d: %w", n, err)
	}
	return nil
}

// inotifyMax is fs.inotify.max_user_instances (the kernel's default, 128,
// when unreadable).
func inotifyMax() int {
	b, _ := os.ReadFile(inotifyMaxFile)
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 128
	}
	return n
}

// inotifyFree is about how many more inotify instances root may open: the
// limit less those open in root's processes now (a descriptor shared by
// several processes is counted in each: the estimate errs low).
func inotifyFree() int {
	var root []int
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		var st unix.Stat_t
		if pid, err := strconv.Atoi(filepath.Base(d)); err == nil && unix.Stat(d, &st) == nil && st.Uid == 0 {
			root = append(root, pid)
		}
	}
	return inotifyMax() - inotifyInstances(root)
}

// stopAll stops the machines in parallel and removes them.
func stopAll(ms []*booted) {
	var wg sync.WaitGroup
	for _, m := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.stop()
			m.remove()
		}()
	}
	wg.Wait()
}

// addBreakdown records the Pss of each process of one idle container of
// tool, largest first, processes of one name summed.
func (e *env) addBreakdown(tool string, ps []proc) {
	sums := map[string]int64{}
	for _, p := range ps {
		sums[p.name] += p.pss
	}
	names := make([]string, 0, len(sums))
	for n := range sums {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int { return int(sums[b] - sums[a]) })
	for _, n := range names {
		e.report.add(newFigure("boot", breakdownCase(tool), "process: "+n, "B", []float64{float64(sums[n])}))
	}
}

// bootMemoryCase names the case of the idle Pss of n containers booted at
// once.
func bootMemoryCase(n int) string {
	return fmt.Sprintf("idle Pss per container, %d booted at once", n)
}

func breakdownCase(tool string) string { return "idle Pss by process, 1 container: " + tool }

// bootGoalNote says whether acetate boots (overlay driver, p50) no slower
// than systemd-nspawn -b in the same run.
func (e *env) bootGoalNote() {
	a, okA := e.report.figure("boot", caseBoot, "acetate overlay")
	n, okN := e.report.figure("boot", caseBoot, "systemd-nspawn -b")
	if !okA || !okN {
		e.report.note("boot", "goal boot ≤ systemd-nspawn -b: not judged (one of them was not measured)")
		return
	}
	e.report.note("boot", fmt.Sprintf("goal boot ≤ systemd-nspawn -b (p50): %s — acetate overlay %s, systemd-nspawn -b %s",
		verdict(a.Median <= n.Median), formatValue(a.Median, "s"), formatValue(n.Median, "s")))
}

// memoryGoalNote says whether an idle booted container of acetate (each
// driver) costs at most bootGoal at every count from bootGoalCount on, and
// at which of them no more than under LXC (issue 18, whose density
// scenario boots 100), and what costs most.
func (e *env) memoryGoalNote() {
	for _, tool := range []string{"acetate overlay", "acetate fuse"} {
		var parts, belowLXC []string
		met, judged := true, false
		for _, n := range e.bootCounts() {
			c := bootMemoryCase(n)
			f, ok := e.report.figure("boot", c, tool)
			if !ok {
				continue
			}
			parts = append(parts, fmt.Sprintf("%d: %s", n, formatValue(f.Median, "B")))
			if n < bootGoalCount {
				continue
			}
			judged, met = true, met && f.Median <= bootGoal
			if l, ok := e.report.figure("boot", c, "lxc-start"); ok {
				belowLXC = append(belowLXC, fmt.Sprintf("%s at %d", verdict(f.Median <= l.Median), n))
				parts[len(parts)-1] += " (lxc-start " + formatValue(l.Median, "B") + ")"
			}
		}
		if len(parts) == 0 {
			continue
		}
		if !judged {
			e.report.note("boot", fmt.Sprintf("goal idle booted systemd container ≤ %s Pss (%s): not judged, fewer than %d booted at once — per container at %s",
				formatValue(bootGoal, "B"), tool, bootGoalCount, strings.Join(parts, ", ")))
			continue
		}
		if len(belowLXC) == 0 {
			belowLXC = []string{"not measured"}
		}
		var top []string
		for _, f := range e.report.Figures {
			if f.Case == breakdownCase(tool) && len(top) < 4 {
				top = append(top, strings.TrimPrefix(f.Tool, "process: ")+" "+formatValue(f.Median, "B"))
			}
		}
		e.report.note("boot", fmt.Sprintf("goal idle booted systemd container ≤ %s Pss with %d or more at once, its acetate processes included (%s): %s; ≤ lxc-start's: %s — per container at %s; largest processes of one: %s",
			formatValue(bootGoal, "B"), bootGoalCount, tool, verdict(met), strings.Join(belowLXC, ", "), strings.Join(parts, ", "), strings.Join(top, ", ")))
	}
}

func verdict(met bool) string {
	if met {
		return "met"
	}
	return "missed"
}
