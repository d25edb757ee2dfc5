// Package netnsthread runs code on an OS thread moved into another network
// namespace, and brings the thread back before anything else runs on it.
//
// Go gives a locked thread back to its scheduler only when unlocked, and
// a goroutine that ends locked ends its thread, except the main thread,
// which Go parks for good: a namespace left on it lives as long as the
// process (acetate's supervisor: a removed container's namespace and
// veth). So a thread is unlocked only once it is back in its own
// namespace, and one that cannot go back ends with its goroutine.
package netnsthread

import (
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Do runs f on a locked thread that enter has moved to another network
// namespace (by unshare(2) or setns(2)) and moves the thread back to its
// own before it is unlocked. It returns enter's error or f's.
func Do(enter, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		own, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("this thread's network namespace: %w", err)
			return
		}
		defer own.Close()
		if err = enter(); err == nil {
			err = f()
		}
		if netns.Set(own) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// Join is an enter for Do: it joins the network namespace bound at path.
func Join(path string) func() error {
	return func() error {
		ns, err := netns.GetFromPath(path)
		if err != nil {
			return fmt.Errorf("network namespace %s: %w", path, err)
		}
		defer ns.Close()
		return netns.Set(ns)
	}
}

// Unshare is an enter for Do: it moves the thread to a new network
// namespace of its own.
func Unshare() error {
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("unshare network namespace: %w", err)
	}
	return nil
}
