package fuse

import (
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
)

// forgetGrace is how long a prune gives the kernel to send the FORGETs of
// the nodes it dropped, and the mounts to handle them, before the memory
// they held is collected.
const forgetGrace = 200 * time.Millisecond

// prune asks the kernel to forget every node of the mount at root that
// nothing in it uses (FUSE_NOTIFY_PRUNE, FUSE protocol 7.45), deepest first, so
// that a directory whose entries go can go with them; the kernel answers
// with FORGETs, and the server drops those nodes. What is in use stays:
// an open file, a mapped library, a working directory, a mount point and
// the directories above them. A container that looks a dropped name up
// again costs one LOOKUP.
//
// This is the kernel's own cache reclaim, asked for early: it drops only
// unused dentries (never a mount, which d_invalidate, and so an entry
// invalidation, would detach from under the container). It is how the
// store's server gives back what an idle container's boot made it hold:
// a booted systemd looks up some 500 files once and keeps a few dozen
// open. What it costs: a container's next walk of the names it dropped
// looks them up again, as its first walk after the mount did. It returns
// how many nodes it named; a kernel without the notification ignores it.
func prune(root *fs.Inode) int {
	var levels [][]*fs.Inode
	for level := []*fs.Inode{root}; len(level) > 0; {
		var next []*fs.Inode
		for _, n := range level {
			for _, c := range n.Children() {
				next = append(next, c)
			}
		}
		levels = append(levels, next)
		level = next
	}
	var nodes []*fs.Inode
	for i := len(levels) - 1; i >= 0; i-- {
		nodes = append(nodes, levels[i]...)
	}
	if len(nodes) > 0 {
		root.NotifyPrune(nodes)
	}
	return len(nodes)
}
