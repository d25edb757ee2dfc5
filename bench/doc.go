// Package bench measures what acetate saves and costs next to the other ways
// of doing the same job, on the machine it runs on.
//
// Run executes scenarios (disk savings, clone, read and metadata, copy-up
// and write, start, publish, and boot: containers that boot systemd, against
// systemd-nspawn -b and lxc-start) on real data — a debootstrap'd Debian rootfs,
// and a second template with one more package — and writes a report:
// report.md (tables), report.json (every figure with its unit, samples,
// min/median/max) and SVG charts. Each peer tool is measured in the same run,
// interleaved round by round with acetate, so that a noisy machine affects
// all of them alike; a peer that is not installed is reported as skipped,
// with the reason.
//
// Rules every scenario keeps: never a single timing (repeat, report median
// and spread), interleave peers, drop the page cache for cold cases only
// when the caller allows it (Options.DropCaches; else they are skipped, with
// the reason), and clean up every mount and temporary directory, also when
// interrupted.
package bench
