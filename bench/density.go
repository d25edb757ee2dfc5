package bench

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/acetate/acetate/fs/container"
	"github.com/acetate/acetate/fs/fuse"
	"github.com/acetate/acetate/internal/du"
	"github.com/acetate/acetate/runtime/launch"
	"github.com/acetate/acetate/templates"
	"golang.org/x/sys/unix"
)

// The density scenario's sizes: containers mounted at once, and how many
// of them then run an idle shell (--quick: a smoke run).
const (
	densityContainers, densityRunning           = 1000, 100
	densityQuickContainers, densityQuickRunning = 20, 3
)

// Its goals (issue 18).
const (
	goalFuseMemory    = 1 << 30   // Pss serving 1,000 fuse mounts
	goalRunningMemory = 300 << 20 // 100 idle running containers, above their own processes
	goalOverlayTotal  = 3.0       // s, create+mount of 1,000 with overlay
	goalLs            = 0.1       // s, acetate ls with 1,000
	goalDiskAbove     = 16 << 20  // disk of the 1,000 above the template
)

// density is one run of the density scenario.
type density struct {
	e       *env
	n       int
	running int
	// counts are the numbers of mounted containers at which memory is
	// sampled for the chart.
	counts []int
	chart  chart
	totals []string // "tool: seconds" of create+mount of n
}

// densityMount is one peer's way of making and mounting container i in a
// directory of its own; serving lists the processes serving its mounts.
type densityMount struct {
	name    string
	missing string
	// mount makes container i and mounts it, returning how long each
	// step took.
	mount   func(i int) (create, mount time.Duration, err error)
	serving func() []int
	// disk is the disk the containers use, above any template.
	disk func() int64
	// unmount removes every mount and container it made.
	unmount func() error
}

// benchDensity creates many containers of the dataset's tree and mounts
// them all, with each acetate driver, beside kernel overlayfs mounts made
// by hand (the floor: nothing runs for them) and fuse-overlayfs mounts
// (one process each): disk and memory (Pss of every process serving the
// mounts) per container, mount time p50/p99, create+mount total and
// acetate ls with all of them. Then, for acetate, some of them run an idle
// `sleep infinity`: start time and the memory of acetate's processes for
// them (the store's supervisor, each init, the FUSE server's growth), their
// own left out. The peers run one after the other (a thousand mounts
// each), not interleaved. Everything is unmounted and removed at the end, also on
// failure.
func benchDensity(e *env) error {
	d := &density{e: e, n: densityContainers, running: densityRunning, counts: []int{1, 10, 100, 1000}}
	if e.opts.Quick {
		d.n, d.running, d.counts = densityQuickContainers, densityQuickRunning, []int{1, 5, 10, 20}
	}
	d.chart = chart{file: "density-memory.svg", title: "memory of the processes serving N mounted containers (Pss)",
		xLabel: "containers mounted", yLabel: "bytes (Pss)", logX: true}
	for _, driver := range []string{"overlay", "fuse"} {
		if err := d.acetate(driver); err != nil {
			return err
		}
	}
	for _, p := range []densityMount{d.kernelOverlay(), d.fuseOverlayfs()} {
		if err := d.measure(p); err != nil {
			return err
		}
	}
	e.report.charts = append(e.report.charts, d.chart)
	for _, sr := range d.chart.series {
		var pts []string
		for _, pt := range sr.points {
			pts = append(pts, fmt.Sprintf("%.0f: %s", pt[0], humanB(pt[1])))
		}
		e.report.note("density", fmt.Sprintf("Pss serving the mounts, %s, by containers mounted: %s", sr.name, strings.Join(pts, ", ")))
	}
	e.report.note("density", fmt.Sprintf("create+mount of %d, total: %s (one after the other, in this process)", d.n, strings.Join(d.totals, "; ")))
	return nil
}

// cas names a case of the scenario.
func (d *density) cas(what string) string { return fmt.Sprintf("%s, %d containers", what, d.n) }

// measure mounts d.n containers with p and records what they cost.
func (d *density) measure(p densityMount) error {
	e := d.e
	cases := []string{d.cas("mount, per container"), d.cas("disk per container"), d.cas("Pss serving them, per container"), d.cas("create, per container")}
	if p.missing != "" {
		for i, c := range cases {
			e.report.skip("density", c, p.name, []string{"s", "B", "B", "s"}[i], p.missing)
		}
		return nil
	}
	e.onCleanup(func() { p.unmount() })
	s := series{name: p.name}
	var creates, times []float64
	t0 := time.Now()
	for i := range d.n {
		if err := e.ctx.Err(); err != nil {
			return err
		}
		c, t, err := p.mount(i)
		if err != nil {
			return fmt.Errorf("%s: container %d: %w", p.name, i, err)
		}
		creates, times = append(creates, c.Seconds()), append(times, t.Seconds())
		if slices.Contains(d.counts, i+1) && p.serving != nil {
			s.points = append(s.points, [2]float64{float64(i + 1), float64(pssSum(p.serving()))})
		}
	}
	total := time.Since(t0).Seconds()
	d.totals = append(d.totals, fmt.Sprintf("%s %.2f s", p.name, total))
	e.report.add(newFigure("density", cases[3], p.name, "s", creates))
	e.report.add(newFigure("density", cases[0], p.name, "s", times))
	e.report.add(newFigure("density", cases[1], p.name, "B", []float64{float64(p.disk()) / float64(d.n)}))
	if p.serving == nil {
		e.report.skip("density", cases[2], p.name, "B", "no process serves the mounts (kernel memory is not in Pss)")
	} else {
		all := pssSum(p.serving())
		e.report.add(newFigure("density", cases[2], p.name, "B", []float64{float64(all) / float64(d.n)}))
		if p.name == "acetate fuse" {
			d.goal(fmt.Sprintf("%d fuse-mounted containers ≤ %s Pss in all (goal for 1,000)", d.n, humanB(goalFuseMemory)),
				all <= goalFuseMemory, humanB(float64(all)))
		}
		d.chart.series = append(d.chart.series, s)
	}
	if p.name == "acetate overlay" {
		d.goal(fmt.Sprintf("create+mount of %d ≤ %.0f s with the overlay driver (goal for 1,000)", d.n, goalOverlayTotal),
			total <= goalOverlayTotal, fmt.Sprintf("%.2f s", total))
	}
	return nil
}

// goal notes whether a goal is met.
func (d *density) goal(what string, met bool, got string) {
	verdict := "met"
	if !met {
		verdict = "MISSED"
	}
	d.e.report.note("density", fmt.Sprintf("goal %s: %s (%s)", what, verdict, got))
}

// acetate measures acetate with driver in a store of its own: mounts, ls,
// then running containers.
func (d *density) acetate(driver string) error {
	e := d.e
	st, err := templates.Open(e.dir("density-" + driver))
	if err != nil {
		return err
	}
	m, err := container.Open(st)
	if err != nil {
		return err
	}
	tpl, err := st.Publish(e.ctx, templates.MustParseRef("density"), e.data.rootfs, templates.PublishOptions{})
	if err != nil {
		return err
	}
	l := launch.New(m)
	var names []string
	p := densityMount{name: "acetate " + driver}
	p.mount = func(i int) (time.Duration, time.Duration, error) {
		name := "d" + strconv.Itoa(i)
		t0 := time.Now()
		if _, err := m.Create(name, tpl.Ref.String()); err != nil {
			return 0, 0, err
		}
		names = append(names, name)
		t1 := time.Now()
		_, err := m.Mount(e.ctx, name, driver, "")
		return t1.Sub(t0), time.Since(t1), err
	}
	if driver == "fuse" {
		p.serving = func() []int {
			pid, err := fuse.ServerPid(st.Layers.Root())
			if err != nil {
				return nil
			}
			return []int{pid}
		}
	}
	p.disk = func() int64 { return du.Tree(filepath.Join(st.Layers.Root(), "containers")).Disk }
	p.unmount = func() error { return removeContainers(l, m, names, st.Layers.Root()) }
	if err := d.measure(p); err != nil {
		return err
	}
	template := du.Tree(st.Layers.ObjectsDir()).Disk + du.Tree(st.Layers.LayersDir()).Disk
	all := p.disk()
	d.goal(fmt.Sprintf("disk of %d containers (%s) ≤ template + %s", d.n, driver, humanB(goalDiskAbove)),
		all <= goalDiskAbove, fmt.Sprintf("template %s, containers %s", humanB(float64(template)), humanB(float64(all))))
	if err := d.ls(p.name, st.Layers.Root(), l); err != nil {
		return err
	}
	if err := d.start(p, l, names[:d.running]); err != nil {
		return err
	}
	return p.unmount()
}

// ls times acetate ls with every container: the CLI's when the run has
// one (as a user runs it), else the launcher's List in this process.
func (d *density) ls(tool, root string, l *launch.Launcher) error {
	how, run := "launcher List in process", func() error { _, err := l.List(); return err }
	if cli := d.e.opts.Command; cli != "" {
		how, run = "acetate ls", func() error {
			return exec.CommandContext(d.e.ctx, cli, "--root", root, "ls").Run()
		}
	}
	var times []float64
	for range d.e.rounds(10) {
		t0 := time.Now()
		if err := run(); err != nil {
			return fmt.Errorf("%s: %w", how, err)
		}
		times = append(times, time.Since(t0).Seconds())
	}
	f := newFigure("density", d.cas("ls ("+how+")"), tool, "s", times)
	d.e.report.add(f)
	d.goal(fmt.Sprintf("%s with %d containers ≤ %.0f ms (goal for 1,000)", how, d.n, goalLs*1000), f.Median <= goalLs,
		fmt.Sprintf("median %.0f ms", f.Median*1000))
	return nil
}

// start runs `sleep infinity` in the mounted containers names, then
// records the start times and what acetate's processes for them cost,
// their own processes (the sleep) left out; the fuse server's growth is
// counted.
func (d *density) start(p densityMount, l *launch.Launcher, names []string) error {
	e := d.e
	k := len(names)
	startCase := fmt.Sprintf("start of sleep infinity, %d of them", k)
	memCase := fmt.Sprintf("Pss above their own processes, per running container, %d running", k)
	if _, err := os.Stat(filepath.Join(e.data.rootfs, "usr/bin/sleep")); err != nil {
		why := "the tree has no /usr/bin/sleep (the generated tree of --quick)"
		e.report.skip("density", startCase, p.name, "s", why)
		e.report.skip("density", memCase, p.name, "B", why)
		return nil
	}
	before := pssSum(servingPids(p))
	var times []float64
	var inits []int
	for _, name := range names {
		t0 := time.Now()
		pid, err := l.Start(e.ctx, name, launch.Options{Args: []string{"sleep", "infinity"}})
		if err != nil {
			return fmt.Errorf("start %s: %w", name, err)
		}
		times = append(times, time.Since(t0).Seconds())
		inits = append(inits, pid)
	}
	// The store's supervisor runs these containers and no other.
	supervisor, err := parentOf(inits[0])
	if err != nil {
		return err
	}
	time.Sleep(time.Second) // let the processes settle
	for _, name := range names {
		if s, err := l.State(name); err != nil || s.State != launch.StateRunning {
			return fmt.Errorf("%s is not running a second after its start (%v)", name, err)
		}
	}
	self, _ := os.Executable()
	var acetate int64
	for _, pr := range processes(append(procTree(inits...), supervisor)) {
		if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pr.pid)); exe == self {
			acetate += pr.pss
		}
	}
	growth := pssSum(servingPids(p)) - before
	above := acetate + max(growth, 0)
	e.report.add(newFigure("density", startCase, p.name, "s", times))
	e.report.add(newFigure("density", memCase, p.name, "B", []float64{float64(above) / float64(k)}))
	d.goal(fmt.Sprintf("%d running idle containers (%s) ≤ %s above their own processes (goal for 100)", k, p.name, humanB(goalRunningMemory)),
		above <= goalRunningMemory, fmt.Sprintf("%s: acetate processes %s, FUSE server growth %s", humanB(float64(above)), humanB(float64(acetate)), humanB(float64(growth))))
	return nil
}

// servingPids lists p's serving processes, if it has any.
func servingPids(p densityMount) []int {
	if p.serving == nil {
		return nil
	}
	return p.serving()
}

// removeContainers stops, unmounts and removes the containers names of the
// store at root, then the store's cgroup (acetate/STORE, which outlives
// the containers' own), and waits for its FUSE server to exit (killing it
// if it does not: a copy of a mount in another mount namespace can keep
// its connection alive).
func removeContainers(l *launch.Launcher, m *container.Manager, names []string, root string) error {
	var errs []error
	var cgroups []string
	defer func() { removeEmptyCgroups(cgroups) }()
	for _, name := range names {
		if s, err := l.State(name); err == nil && s.Alive() {
			if cgroups == nil {
				cgroups = storeCgroups(s.Pid)
			}
			errs = append(errs, l.Stop(name, 5*time.Second))
		}
		errs = append(errs, m.Remove(name, true))
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		pid, err := fuse.ServerPid(root)
		if err != nil {
			break
		}
		if time.Now().After(deadline) {
			unix.Kill(pid, unix.SIGKILL)
			errs = append(errs, fmt.Errorf("the FUSE server of %s outlived its mounts: killed", root))
			break
		}
	}
	return errors.Join(errs...)
}

// kernelOverlay is the floor: kernel overlayfs mounted by hand over the
// tree, an upper, work and mount point directory each.
func (d *density) kernelOverlay() densityMount {
	dir := d.e.dir("density-overlay")
	var mnts []string
	return densityMount{
		name: "kernel overlayfs",
		mount: func(i int) (time.Duration, time.Duration, error) {
			t0 := time.Now()
			upper, work, mnt := handDirs(dir, i)
			t1 := time.Now()
			err := unix.Mount("overlay", mnt, "overlay", 0, fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", d.e.data.rootfs, upper, work))
			if err == nil {
				mnts = append(mnts, mnt)
			}
			return t1.Sub(t0), time.Since(t1), err
		},
		disk:    func() int64 { return du.Tree(dir).Disk },
		unmount: func() error { return unmountAll(&mnts) },
	}
}

// fuseOverlayfs is fuse-overlayfs over the tree, one process per mount.
func (d *density) fuseOverlayfs() densityMount {
	p := densityMount{name: "fuse-overlayfs", missing: needs("fuse-overlayfs")}
	if p.missing != "" {
		return p
	}
	dir := d.e.dir("density-fuse-overlayfs")
	var mnts []string
	p.mount = func(i int) (time.Duration, time.Duration, error) {
		t0 := time.Now()
		upper, work, mnt := handDirs(dir, i)
		t1 := time.Now()
		out, err := exec.CommandContext(d.e.ctx, "fuse-overlayfs", "-o",
			fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", d.e.data.rootfs, upper, work), mnt).CombinedOutput()
		if err != nil {
			return 0, 0, fmt.Errorf("fuse-overlayfs: %w: %s", err, firstLine(string(out)))
		}
		mnts = append(mnts, mnt)
		return t1.Sub(t0), time.Since(t1), nil
	}
	p.serving = func() []int { return cmdlineHolders("fuse-overlayfs", dir) }
	p.disk = func() int64 { return du.Tree(dir).Disk }
	p.unmount = func() error { return unmountAll(&mnts) }
	return p
}

// handDirs makes container i's upper, work and mount point directories
// under dir.
func handDirs(dir string, i int) (upper, work, mnt string) {
	c := filepath.Join(dir, strconv.Itoa(i))
	upper, work, mnt = filepath.Join(c, "upper"), filepath.Join(c, "work"), filepath.Join(c, "mnt")
	for _, p := range []string{upper, work, mnt} {
		os.MkdirAll(p, 0o755)
	}
	return upper, work, mnt
}

// unmountAll unmounts every mount point in *mnts and empties it.
func unmountAll(mnts *[]string) error {
	var errs []error
	for _, m := range *mnts {
		if err := unix.Unmount(m, 0); err != nil {
			errs = append(errs, fmt.Errorf("unmount %s: %w", m, err), unix.Unmount(m, unix.MNT_DETACH))
		}
	}
	*mnts = nil
	return errors.Join(errs...)
}

// cmdlineHolders returns the processes called name whose command line
// mentions s.
func cmdlineHolders(name, s string) []int {
	var out []int
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, "cmdline"))
		if err != nil || !strings.Contains(string(b), s) || filepath.Base(string(b[:max(0, strings.IndexByte(string(b), 0))])) != name {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(dir)); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

// pssSum is the Pss of the processes pids, in bytes.
func pssSum(pids []int) int64 {
	var sum int64
	for _, p := range processes(pids) {
		sum += p.pss
	}
	return sum
}

// humanB formats bytes in binary units.
func humanB(b float64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.2f GiB", b/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", b/(1<<20))
	}
	return fmt.Sprintf("%.0f KiB", b/(1<<10))
}
