package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/acetate/acetate/fs/container"
	"github.com/acetate/acetate/fs/container/archive"
	"github.com/acetate/acetate/runtime/launch"
	"github.com/acetate/acetate/templates"
	"github.com/acetate/acetate/templates/registry"
	"github.com/spf13/cobra"
)

// isContainerPush reports whether push NAME means container NAME: --container
// was given, or NAME has no tag, names a container, and no template.
func (a *app) isContainerPush(name string, flag bool) (bool, error) {
	if flag {
		return true, nil
	}
	if container.ValidateName(name) != nil {
		return false, nil // NAME:TAG: a template
	}
	m, err := a.containers()
	if err != nil {
		return false, nil //nolint:nilerr // no store: the template push says so
	}
	if _, err := m.Get(name); err != nil {
		return false, nil //nolint:nilerr // no such container: a template push
	}
	_, err = m.Store().Lookup(name)
	switch {
	case errors.Is(err, templates.ErrNotFound):
		return true, nil
	case err == nil:
		return false, usageError{fmt.Errorf("%s names both a template and a container: add --container to push the container, or :TAG for the template", name)}
	}
	return false, err
}

// pushContainer pushes container name to image (see archive.Push), frozen
// for the capture when it runs.
func (a *app) pushContainer(c *cobra.Command, name, image string, o registry.Options) error {
	l, m, err := a.launcher()
	if err != nil {
		return err
	}
	p, done := a.progress("pushing "+name, true)
	o.Progress = p
	r, err := archive.Push(c.Context(), m, name, image, archive.PushOptions{Registry: o,
		Freeze: func(capture func() error) (time.Duration, error) { return l.Frozen(name, capture) }})
	done()
	if err != nil {
		return err
	}
	if a.format == "json" {
		return a.render(map[string]any{"container": name, "image": image, "bytesSent": r.Bytes, "frozenNs": r.Frozen}, table{})
	}
	fmt.Fprintf(a.stdout, "pushed container %s to %s: %s sent%s\n", name, image, humanBytes(r.Bytes), frozenText(r.Frozen))
	return nil
}

// pullContainer makes container name from the container pushed at image,
// keeping the settings that reach the host only when trust.
func (a *app) pullContainer(c *cobra.Command, image, name string, ro registry.Options, trust bool) error {
	o := archive.PullOptions{Registry: ro, TrustSettings: trust}
	if _, err := containerName(name); err != nil {
		return err
	}
	m, err := a.createContainers()
	if err != nil {
		return err
	}
	p, done := a.progress("pulling "+name, true)
	o.Registry.Progress = p
	ctx, finish := interruptible(c.Context(), "no container was made; the objects verified so far are kept")
	r, err := archive.Pull(ctx, m, image, name, o)
	done()
	if err := finish(err); err != nil {
		return err
	}
	if a.format == "json" {
		return a.render(map[string]any{"container": r.Name, "image": image, "bytesReceived": r.Bytes, "dropped": r.Dropped}, table{})
	}
	fmt.Fprintf(a.stdout, "pulled container %s from %s: %s received\n", r.Name, image, humanBytes(r.Bytes))
	a.printDropped(r.Dropped)
	return nil
}

// printDropped says which settings an import or pull took out.
func (a *app) printDropped(dropped []string) {
	for _, d := range dropped {
		fmt.Fprintf(a.stdout, "left out (it reaches the host; --trust-settings keeps it): %s\n", quoteName(d))
	}
}

// moveReport is what move says it did.
type moveReport struct {
	Container string `json:"container"`
	Via       string `json:"via"`
	// Target is the store the container was started in ("" when move only
	// printed the commands).
	Target string `json:"target,omitempty"`
	// LiveBytes were sent while the container ran; FinalBytes after it
	// was frozen or stopped; PulledBytes received by the target, in all.
	LiveBytes   int64 `json:"liveBytes"`
	FinalBytes  int64 `json:"finalBytes"`
	PulledBytes int64 `json:"pulledBytes"`
	// Downtime runs from the freeze (or stop) to the start on the target
	// (to the end of the last push without a target).
	Downtime time.Duration `json:"downtimeNs"`
	Total    time.Duration `json:"totalNs"`
	// Commands are what to run on the target, without --to.
	Commands []string `json:"commands,omitempty"`
}

func newMoveCmd(a *app) *cobra.Command {
	var via, to string
	var stop, insecure bool
	var stall time.Duration
	cmd := &cobra.Command{
		Use:   "move NAME --via REGISTRY/REPO:TAG [--to ROOT] [--stop]",
		Short: "Move a container to another store through an OCI registry, with little downtime",
		Long: `Move pushes container NAME to the registry while it runs (its template's
image goes too, where the registry lacks it), then freezes it (or, with
--stop, stops it), pushes only what changed meanwhile, and then either
prints the commands that pull and start it on the target host, or, with
--to ROOT (a second store on this machine), pulls it there (what the first
push sent, while the container still runs; what the second sent, while it
is down), stops the source and starts it from ROOT. The target fetches only what its store
lacks: with the template there, about the container's own differences.
It reports the downtime (from the freeze to the start on the target) and
the bytes sent and received.

The source container is left stopped (remove it with acetate rm once the
target runs). If the final push or the pull fails, the source is thawed
(or started again) and goes on running. If move itself is killed while
the source is frozen, the source stays paused: acetate unpause NAME.`,
		Example: `  acetate move web1 --via registry.example.com/moves/web1:1
  acetate move web1 --via 127.0.0.1:5000/moves/web1:1 --insecure --to /srv/acetate2`,
		Args: exactArgs(1),
		RunE: a.containerRun(func(c *cobra.Command, m *container.Manager, name string, _ []string) error {
			if via == "" {
				return usageError{errors.New("--via REGISTRY/REPO:TAG is required")}
			}
			if to != "" && sameDir(to, a.root) {
				return usageError{fmt.Errorf("--to %s is this store: give another store's root", to)}
			}
			image, err := imageReference(via)
			if err != nil {
				return err
			}
			o := registry.Options{Insecure: insecure, StallTimeout: stall}
			if _, err := registry.ParseReference(image, o); err != nil {
				return usageError{err}
			}
			r, err := a.move(c.Context(), m, name, image, to, stop, o)
			if err != nil {
				return err
			}
			if a.format == "json" {
				return a.render(r, table{})
			}
			fmt.Fprintf(a.stdout, "moved %s via %s: sent %s while running and %s after; target received %s; downtime %v (total %v)\n",
				name, image, humanBytes(r.LiveBytes), humanBytes(r.FinalBytes), humanBytes(r.PulledBytes),
				r.Downtime.Round(time.Millisecond), r.Total.Round(time.Millisecond))
			for _, cmd := range r.Commands {
				fmt.Fprintln(a.stdout, "  on the target:", cmd)
			}
			return nil
		}),
	}
	cmd.Flags().StringVar(&via, "via", "", "registry reference to move the container through (REGISTRY/REPO:TAG)")
	cmd.Flags().StringVar(&to, "to", "", "store root on this machine to pull and start the container in")
	cmd.Flags().BoolVar(&stop, "stop", false, "stop the container for the last push instead of freezing it")
	cmd.Flags().BoolVar(&insecure, "insecure", false, "allow plain HTTP and unverified TLS")
	cmd.Flags().DurationVar(&stall, "stall-timeout", registry.DefaultStallTimeout, "abandon a transfer that moves less than 1 KiB in this long")
	return cmd
}

// move does what the move command says (see its help).
func (a *app) move(ctx context.Context, m *container.Manager, name, image, to string, stop bool, o registry.Options) (*moveReport, error) {
	l := launch.New(m)
	r := &moveReport{Container: name, Via: image, Target: to}
	start := time.Now()
	push := func() (int64, error) {
		o := o
		o.Traffic = &registry.Traffic{}
		rep, err := archive.Push(ctx, m, name, image, archive.PushOptions{Registry: o,
			Freeze: func(capture func() error) (time.Duration, error) { return l.Frozen(name, capture) }})
		if err != nil {
			return 0, err
		}
		return rep.Bytes, nil
	}
	var target *container.Manager
	var err error
	if to != "" {
		if target, err = a.targetStore(to); err != nil {
			return nil, err
		}
		if _, err := target.Get(name); err == nil {
			return nil, fmt.Errorf("%s: %w in %s", name, container.ErrExists, to)
		}
	}
	if r.LiveBytes, err = push(); err != nil {
		return nil, err
	}
	if to != "" {
		// The target fetches the live state now, so that while the
		// container is down it fetches only what changed since.
		pre, err := archive.Prefetch(ctx, target, image, o)
		if err != nil {
			return nil, err
		}
		r.PulledBytes = pre.Bytes
	}
	st, err := l.State(name)
	if err != nil {
		return nil, err
	}
	running := st.Alive()
	down := time.Now()
	// undo puts the source back as it was when a later step fails.
	undo := func(err error) error { return err }
	if running {
		if stop {
			err = l.Stop(name, -1) // the kind of container's default time
			undo = func(err error) error { return restart(ctx, l, m, name, err) }
		} else {
			var thaw func() error
			if thaw, err = l.Freeze(name); err == nil {
				undo = func(err error) error { return errors.Join(err, thaw()) }
			}
		}
		if err != nil {
			return nil, err
		}
	}
	if r.FinalBytes, err = push(); err != nil {
		return nil, undo(err)
	}
	if to == "" {
		if running && !stop {
			if err := l.Stop(name, 0); err != nil {
				return nil, err
			}
		}
		r.Downtime, r.Total = time.Since(down), time.Since(start)
		r.Commands = []string{fmt.Sprintf("acetate pull %s --container %s%s", image, name, insecureFlag(o)),
			"acetate start " + name}
		return r, nil
	}
	// One's own container, from one's own store: its settings stay.
	pulled, err := archive.Pull(ctx, target, image, name, archive.PullOptions{Registry: o, TrustSettings: true})
	if err != nil {
		return nil, undo(err)
	}
	r.PulledBytes += pulled.Bytes
	if running {
		if err := l.Stop(name, 0); err != nil {
			return nil, err
		}
		ct, err := target.Get(name)
		if err != nil {
			return nil, err
		}
		if _, err := launch.New(target).Start(ctx, name, launch.FromSettings(ct.Settings)); err != nil {
			return nil, restart(ctx, l, m, name, fmt.Errorf("start %s in %s: %w", name, to, err))
		}
	}
	r.Downtime, r.Total = time.Since(down), time.Since(start)
	return r, nil
}

// targetStore opens the container manager of the store at root.
func (a *app) targetStore(root string) (*container.Manager, error) {
	st, err := templates.Open(root)
	if err != nil {
		return nil, err
	}
	return a.containersOf(st)
}

// restart starts the source container name again after a failed move,
// and returns the move's error (with the restart's).
func restart(ctx context.Context, l *launch.Launcher, m *container.Manager, name string, err error) error {
	ct, gerr := m.Get(name)
	if gerr != nil {
		return errors.Join(err, gerr)
	}
	_, serr := l.Start(ctx, name, launch.FromSettings(ct.Settings))
	return errors.Join(err, serr)
}

// insecureFlag is " --insecure" when o allows plain HTTP.
func insecureFlag(o registry.Options) string {
	if o.Insecure {
		return " --insecure"
	}
	return ""
}

// sameDir reports whether paths a and b name the same directory.
func sameDir(a, b string) bool {
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(fa, fb)
}
