package runtime

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// callerSignals are the signals that Run and Exec relay from their caller to
// the container's command while it runs.
var callerSignals = []os.Signal{
	unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2,
}

// supervise waits for the helper p to exit and returns its exit code.
// Meanwhile it calls cancel when ctx is done and, with relay, passes the
// callerSignals that this process receives on to p. The signals are caught
// by the same goroutine that relays them, off the start path (enabling or
// disabling a signal costs the Go runtime a round trip to its signal-mask
// thread per signal), so one that comes before has its usual effect on the
// caller. With nothing to relay and a ctx that is never done (the
// supervisor's containers) it starts no goroutine: one per running
// container, blocked for its whole life, would be the supervisor's only
// use for it.
func (p *initProcess) supervise(ctx context.Context, relay bool, cancel func()) (int, error) {
	if !relay && ctx.Done() == nil {
		return p.wait()
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		var sigs chan os.Signal
		if relay {
			sigs = make(chan os.Signal, 8)
			signal.Notify(sigs, callerSignals...)
			defer signal.Stop(sigs)
		}
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				cancel()
				return
			case s := <-sigs:
				// Not before the helper can pass it on: see
				// report.
				p.report()
				p.cmd.Process.Signal(s)
			}
		}
	}()
	return p.wait()
}

// forwardedSignals are the signals an init or exec helper passes on to its
// command: those used to stop, reload or resize a service (SIGPWR is how LXC
// asks a systemd container to shut down). Each caught signal costs the Go
// runtime a round trip to its signal-mask thread at start, so the list is
// kept to what containers use.
var forwardedSignals = []os.Signal{
	unix.SIGHUP, unix.SIGINT, unix.SIGQUIT, unix.SIGTERM,
	unix.SIGUSR1, unix.SIGUSR2, unix.SIGWINCH, unix.SIGPWR,
}

// signalForwarder catches the signals in forwardedSignals, to pass them on
// to the command once it runs.
type signalForwarder struct {
	sigs  chan os.Signal
	ready chan struct{}
}

// startSignalForwarder starts catching signals, concurrently with the
// container's setup (signal.Notify costs a few hundred microseconds); ready
// is closed once they are caught. A signal that comes before has the Go
// runtime's default action; for an init, whose default-action signals the
// kernel ignores, the runtime then exits with status 2. A helper whose
// parent waits for its report waits for ready before it forks the command,
// so Stop after Start never hits this.
func startSignalForwarder() *signalForwarder {
	f := &signalForwarder{sigs: make(chan os.Signal, 32), ready: make(chan struct{})}
	go func() {
		signal.Notify(f.sigs, forwardedSignals...)
		close(f.ready)
	}()
	return f
}

// forward passes the caught signals, those that came during setup first, on
// to pid.
func (f *signalForwarder) forward(pid int) {
	for s := range f.sigs {
		unix.Kill(pid, s.(syscall.Signal))
	}
}

// resetIgnoredSignals gives the signals this process ignores their default
// action back, right before it executes a container's command or init: an
// ignored signal stays ignored across execve, and a shell cannot trap one
// it was started with ignored. A supervisor started under nohup (SIGHUP
// ignored) passed that on to every container, whose `trap ... HUP` then did
// nothing, and stop, its signal dropped, killed it. A container's PID 1
// starts with every signal at its default, as a machine's does at boot;
// signals with a handler get theirs back from execve itself.
func resetIgnoredSignals() {
	const sigIgn = 1
	// struct sigaction (32 bytes on amd64, 24 on arm64), its handler
	// first; all zero is SIG_DFL with no flags and an empty mask.
	var dfl, old [4]uint64
	for sig := uintptr(1); sig <= 64; sig++ {
		_, _, errno := unix.RawSyscall6(unix.SYS_RT_SIGACTION, sig, 0, uintptr(unsafe.Pointer(&old)), 8, 0, 0)
		if errno == 0 && old[0] == sigIgn {
			unix.RawSyscall6(unix.SYS_RT_SIGACTION, sig, uintptr(unsafe.Pointer(&dfl)), 0, 8, 0, 0)
		}
	}
}
