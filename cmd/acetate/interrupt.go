package main

import (
	"context"
	"errors"
	"os/signal"
	"syscall"
)

// exitInterrupted is the exit code of a command that SIGINT or SIGTERM
// stopped, as a shell reports a process that SIGINT killed.
const exitInterrupted = 130

// interruptible returns a context that SIGINT and SIGTERM cancel, for work
// that removes what it staged when its context ends (publish, commit,
// import, export, pull), and finish, which stops listening for the signals
// and, when a signal ended the work with an error, replaces that error by
// "interrupted: " and said (what happened to the work), exit code 130.
func interruptible(parent context.Context, said string) (ctx context.Context, finish func(error) error) {
	ctx, stop := signal.NotifyContext(parent, syscall.SIGINT, syscall.SIGTERM)
	return ctx, func(err error) error {
		interrupted := ctx.Err() != nil && parent.Err() == nil
		stop()
		if err != nil && interrupted {
			return exitError{errors.New("interrupted: " + said), exitInterrupted}
		}
		return err
	}
}
