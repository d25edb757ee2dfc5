package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Options select what Run measures and where the report goes.
type Options struct {
	// Quick runs every scenario with small sizes and few rounds (CI smoke).
	Quick bool
	// Out is the report directory.
	Out string
	// Scenarios limits the run to these names; empty runs all.
	Scenarios []string
	// Work is where data and stores are made (default /var/tmp).
	Work string
	// Log receives one line per step; nil is silent.
	Log io.Writer
	// DropCaches lets the cold-cache cases write /proc/sys/vm/drop_caches
	// before each sample, which empties the whole host's page cache. When
	// false (the default: tests and other callers never drop a host's
	// caches unasked) those cases are reported as skipped, with the reason.
	DropCaches bool
	// Boots is how often the boot scenario boots each peer (default 20;
	// 3 with Quick).
	Boots int
	// BootCounts are the numbers of containers the boot scenario boots at
	// once to measure their idle memory (default 1, 10, 50; 1, 2 with
	// Quick).
	BootCounts []int
	// InotifyInstances, when above the host's
	// fs.inotify.max_user_instances, raises that sysctl to it for the boot
	// scenario's memory case and puts the old value back at its end: a
	// booted systemd takes about 7 of the instances that all of root's
	// processes on the host share (128 by default), under every tool
	// alike. 0 (the default) changes no sysctl.
	InotifyInstances int
	// Command is the acetate command (the CLI's executable) with which the
	// boot scenario starts containers, as a user does ("acetate start");
	// empty, they are started in this process through the launcher (a
	// test binary is no CLI), and the monitors then share the pages of
	// this process's executable, which lowers their Pss.
	Command string
}

// noDropReason is the reason reported for a cold case that did not run.
const noDropReason = "cold cache: dropping the host's page cache was not allowed (acetate bench --no-drop-caches, or a caller without Options.DropCaches)"

// scenario is one named measurement.
type scenario struct {
	name string
	run  func(e *env) error
}

// Scenarios lists the scenario names in the order they run.
func Scenarios() []string {
	var names []string
	for _, s := range scenarios {
		names = append(names, s.name)
	}
	return names
}

var scenarios = []scenario{
	{"publish", benchPublish},
	{"disk", benchDisk},
	{"containers", benchContainersDisk},
	{"clone", benchClone},
	{"read", benchRead},
	{"write", benchWrite},
	{"quota", benchQuota},
	{"start", benchStart},
	{"net", benchNet},
	{"boot", benchBoot},
	{"density", benchDensity},
	{"snapshot", benchSnapshot},
	{"move", benchMove},
}

// env is the state of one run, shared by its scenarios.
type env struct {
	ctx    context.Context
	opts   Options
	report *Report
	work   string
	data   *dataset
	store  *acetateStore
	// cleanups run in reverse order at the end, also after an interrupt.
	cleanups []func()
}

// Run runs the selected scenarios and writes the report to opts.Out. It
// refuses to run when not root: without root most peers cannot run, and a
// partial comparison would mislead.
func Run(ctx context.Context, opts Options) (*Report, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("bench must run as root (mounts, namespaces, drop_caches); refusing to print misleading numbers")
	}
	for _, name := range opts.Scenarios {
		if !slices.Contains(Scenarios(), name) {
			return nil, fmt.Errorf("unknown scenario %q (have: %s)", name, strings.Join(Scenarios(), ", "))
		}
	}
	if opts.Work == "" {
		opts.Work = "/var/tmp"
	}
	work, err := os.MkdirTemp(opts.Work, "acetate-bench-")
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	e := &env{ctx: ctx, opts: opts, work: work, report: &Report{Date: time.Now().UTC(), Machine: machine(), Quick: opts.Quick}}
	defer e.cleanup()
	// acetate/ in each cgroup hierarchy goes last, where this run made it
	// (each store's acetate/STORE goes with its containers).
	had := cgroupsNamed("acetate")
	e.onCleanup(func() {
		removeEmptyCgroups(slices.DeleteFunc(cgroupsNamed("acetate"), func(d string) bool { return slices.Contains(had, d) }))
	})
	if opts.DropCaches {
		e.logf("cold-cache cases drop the host's page cache (/proc/sys/vm/drop_caches) before each sample; --no-drop-caches skips them")
	} else {
		e.logf("cold-cache cases are skipped: the host's page cache is not dropped")
	}
	start := time.Now()
	if e.data, err = e.prepareData(); err != nil {
		return nil, err
	}
	e.report.Data = e.data.describe()
	for _, s := range scenarios {
		if len(opts.Scenarios) > 0 && !slices.Contains(opts.Scenarios, s.name) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		e.logf("scenario %s", s.name)
		if err := s.run(e); err != nil {
			return nil, fmt.Errorf("scenario %s: %w", s.name, err)
		}
	}
	e.report.Duration = time.Since(start).Seconds()
	if opts.Out != "" {
		if err := e.report.write(opts.Out); err != nil {
			return nil, err
		}
	}
	return e.report, nil
}

func (e *env) logf(format string, args ...any) {
	if e.opts.Log != nil {
		fmt.Fprintf(e.opts.Log, "bench: "+format+"\n", args...)
	}
}

// rounds is how often each timing is repeated.
func (e *env) rounds(full int) int {
	if e.opts.Quick {
		return min(full, 3)
	}
	return full
}

// dir makes a fresh directory in the work area.
func (e *env) dir(name string) string {
	d, err := os.MkdirTemp(e.work, name+"-")
	if err != nil {
		panic(err)
	}
	return d
}

// onCleanup registers f to run at the end of the run.
func (e *env) onCleanup(f func()) { e.cleanups = append(e.cleanups, f) }

// mounted registers a mount point to be lazily unmounted at the end.
func (e *env) mounted(target string) {
	e.onCleanup(func() { unix.Unmount(target, unix.MNT_DETACH) })
}

func (e *env) cleanup() {
	for i := len(e.cleanups) - 1; i >= 0; i-- {
		e.cleanups[i]()
	}
	os.RemoveAll(e.work)
}

// peer is one way of doing the job, measured side by side with the others.
type peer struct {
	name string
	// missing, when non-empty, says why the peer cannot run here.
	missing string
	// setup runs before each sample, untimed; may be nil.
	setup func() error
	// run does the work once; it is timed.
	run func() error
}

// needs returns "" when every command is on PATH, else the reason.
func needs(cmds ...string) string {
	for _, c := range cmds {
		if _, err := exec.LookPath(c); err != nil {
			return c + " is not installed"
		}
	}
	return ""
}

// interleave times every peer rounds times, one sample of each peer per
// round, rotating the order, and records a figure per peer.
func (e *env) interleave(scenarioName, cas string, rounds int, peers []peer) error {
	samples := make([][]float64, len(peers))
	failed := make([]string, len(peers))
	for r := range rounds {
		for k := range peers {
			i := (k + r) % len(peers)
			p := peers[i]
			if p.missing != "" || failed[i] != "" {
				continue
			}
			if err := e.ctx.Err(); err != nil {
				return err
			}
			if p.setup != nil {
				if err := p.setup(); err != nil {
					failed[i] = "setup failed: " + err.Error()
					continue
				}
			}
			t0 := time.Now()
			err := p.run()
			d := time.Since(t0).Seconds()
			if err != nil {
				failed[i] = err.Error()
				continue
			}
			samples[i] = append(samples[i], d)
		}
	}
	for i, p := range peers {
		switch {
		case p.missing != "":
			e.report.skip(scenarioName, cas, p.name, "s", p.missing)
		case failed[i] != "":
			e.report.skip(scenarioName, cas, p.name, "s", "failed: "+firstLine(failed[i]))
		default:
			e.report.add(newFigure(scenarioName, cas, p.name, "s", samples[i]))
		}
	}
	return nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// sh runs a shell command, returning its combined output in the error.
func sh(script string) error {
	out, err := exec.Command("sh", "-c", script).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", script, err, firstLine(string(out)))
	}
	return nil
}

// dropCaches empties the page cache, dentries and inodes (cold runs).
func dropCaches() error {
	unix.Sync()
	return os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0o200)
}

func machine() string {
	var u unix.Utsname
	unix.Uname(&u)
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				_, model, _ = strings.Cut(l, ": ")
				break
			}
		}
	}
	var si unix.Sysinfo_t
	unix.Sysinfo(&si)
	return fmt.Sprintf("%s, %d cores, %.0f GiB RAM, Linux %s", model, runtime.NumCPU(),
		float64(si.Totalram)*float64(si.Unit)/(1<<30), unix.ByteSliceToString(u.Release[:]))
}
