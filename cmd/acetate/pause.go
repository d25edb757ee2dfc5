package main

import (
	"github.com/acetate/acetate/runtime/launch"
	"github.com/spf13/cobra"
)

// newPauseCmds returns pause and unpause.
func newPauseCmds(a *app) []*cobra.Command {
	return []*cobra.Command{
		a.launcherEach("pause NAME...", "Freeze every process of running containers",
			`Pause freezes every process of each container through its freezer cgroup
(cgroup v1's freezer hierarchy, or cgroup v2's cgroup.freeze): they use no
CPU and change nothing until acetate unpause. ps and inspect show the
container as "paused". stop works on a paused container (it thaws it first).`,
			`  acetate pause web1
  acetate pause web1 web2 && acetate unpause web1 web2`,
			(*launch.Launcher).Pause),
		a.launcherEach("unpause NAME...", "Thaw paused containers",
			`Unpause lets the processes of each container paused by acetate pause run again.`,
			`  acetate unpause web1`,
			(*launch.Launcher).Resume),
	}
}

// launcherEach is a command that runs f on each container NAME given, in
// order, and stops at the first error.
func (a *app) launcherEach(use, short, long, example string, f func(l *launch.Launcher, name string) error) *cobra.Command {
	return &cobra.Command{
		Use: use, Short: short, Long: long, Example: example,
		Args: minArgs(1, "at least one container NAME"),
		RunE: func(c *cobra.Command, args []string) error { return a.eachContainer(args, f) },
	}
}
