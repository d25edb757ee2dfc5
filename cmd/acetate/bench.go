package main

import (
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/acetate/acetate/bench"
	"github.com/spf13/cobra"
)

func newBenchCmd(a *app) *cobra.Command {
	var opts bench.Options
	var noDrop bool
	cmd := &cobra.Command{
		Use:   "bench [SCENARIO...]",
		Short: "Measure disk savings and speed side by side with other tools",
		Long: `bench runs scenarios on real data (a cached debootstrap rootfs, or a
generated tree of the same shape) and writes report.md, report.json and SVG
charts to --out. Peer tools (ostree, fuse-overlayfs, bwrap, crun, runc, ...)
are measured in the same run, interleaved, and reported as skipped when not
installed. Needs root.

The cold-cache cases (read scenario) drop the whole host's page cache
before each sample, by writing /proc/sys/vm/drop_caches: other programs on
the machine then read from disk again. bench says so when it starts.
--no-drop-caches skips those cases; the report lists them as skipped, with
the reason.

The boot scenario boots a cached Debian tree's systemd (.ci/setup makes it)
in acetate containers, under systemd-nspawn -b and under lxc-start: boot
and stop times over --boots boots each, and the memory of idle booted
containers, --boot-counts of them at once. It never drops caches. Each
booted systemd holds about 7 of the inotify instances that all of root's
processes share (fs.inotify.max_user_instances, 128 by default), so more
than about 15 at once need --inotify-instances: bench then raises that
sysctl for the memory case, says so, and puts it back at its end (as LXC
and Incus hosts set it for good).

The density scenario creates and mounts 1,000 containers of the Debian
tree with each driver, beside 1,000 kernel overlayfs mounts made by hand
and 1,000 fuse-overlayfs processes (20 of each with --quick), then runs an
idle sleep in 100 of acetate's: disk, memory and mount time per container,
ls time, start time. It needs a few GiB of free memory.

Scenarios: ` + strings.Join(bench.Scenarios(), ", "),
		Example: `  acetate bench --quick --out /tmp/bench
  acetate bench --out bench/results publish disk
  acetate bench --no-drop-caches --out /tmp/bench read
  acetate bench --boots 20 --boot-counts 1,10,50 --out /tmp/bench boot
  acetate bench --boot-counts 1,10,100 --inotify-instances 1024 --out /tmp/bench boot`,
		RunE: func(c *cobra.Command, args []string) error {
			opts.Scenarios = args
			opts.Log = a.stderr
			opts.DropCaches = !noDrop
			if exe, err := os.Executable(); err == nil {
				opts.Command = exe // the boot scenario starts containers as a user does
			}
			ctx, stop := signal.NotifyContext(c.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			r, err := bench.Run(ctx, opts)
			if err != nil {
				return err
			}
			if a.format == "json" {
				return a.render(r, table{})
			}
			fmt.Fprintf(a.stdout, "%d figures in %.0f s; report in %s\n", len(r.Figures), r.Duration, opts.Out)
			return nil
		},
	}
	cmd.Flags().BoolVar(&opts.Quick, "quick", false, "small data and few rounds (CI smoke run, under a minute)")
	cmd.Flags().StringVar(&opts.Out, "out", "bench-report", "report directory")
	cmd.Flags().StringVar(&opts.Work, "work", "/var/tmp", "where to make data, stores and mounts")
	cmd.Flags().IntVar(&opts.Boots, "boots", 0, "boots of each peer in the boot scenario (0: 20, 3 with --quick)")
	cmd.Flags().IntSliceVar(&opts.BootCounts, "boot-counts", nil, "containers booted at once for the boot scenario's memory case (default 1,10,50; 1,2 with --quick)")
	cmd.Flags().IntVar(&opts.InotifyInstances, "inotify-instances", 0, "raise fs.inotify.max_user_instances to this during the boot scenario's memory case, then put it back (0: never change it)")
	cmd.Flags().BoolVar(&noDrop, "no-drop-caches", false, "never drop the host's page cache: skip the cold-cache cases")
	return cmd
}
