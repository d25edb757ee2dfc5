package fuse

import "time"

// A mount is pruned once it has looked up at least pruneAfter names since
// its last prune and then none for pruneQuiet (checked every pruneTick):
// a booting systemd looks some 500 names up within its first second and
// few after. A container that keeps looking names up keeps its cache; one
// that pauses for a second loses only the names nothing in it holds.
const (
	pruneAfter = 64
	pruneQuiet = time.Second
	pruneTick  = 500 * time.Millisecond
)

// quietWatch is what the pruner knows of one mount: its count of lookups
// (union.lookups) when last seen to change, since when it has not, and as
// of its last prune. A lookup itself only adds to the count.
type quietWatch struct {
	seen, prunedAt uint64
	since          time.Time
}

// due reports, given the mount's lookups at now, whether it is due a
// prune, and if so records one.
func (w *quietWatch) due(lookups uint64, now time.Time) bool {
	if lookups != w.seen {
		w.seen, w.since = lookups, now
		return false
	}
	if lookups-w.prunedAt < pruneAfter || now.Sub(w.since) < pruneQuiet {
		return false
	}
	w.prunedAt = lookups
	return true
}

// prune asks the kernel to forget every node of the mount u that
// nothing in it uses (FUSE_NOTIFY_PRUNE, FUSE protocol 7.45), deepest
// first, so that a directory whose entries go can go with them; the
// kernel answers with FORGETs, and the server drops those nodes. What is
// in use stays: an open file, a mapped library, a working directory, a
// mount point and the directories above them.
//
// This is the kernel's own cache reclaim, asked for early: it drops only
// unused dentries (never a mount, which d_invalidate, and so an entry
// invalidation, would detach from under the container). It is how the
// store's server gives back what an idle container's boot made it hold:
// a booted systemd looks up some 500 files once and keeps a few dozen
// open. What it costs: a container's next walk of the names it dropped
// looks them up again, as its first walk after the mount did. A kernel
// without the notification ignores it.
func prune(u *union) {
	u.tree.Lock()
	var levels [][]uint64
	for level := []*node{u.root}; len(level) > 0; {
		var next []*node
		var ids []uint64
		for _, n := range level {
			for _, c := range n.kids {
				next = append(next, c)
				ids = append(ids, c.nodeID)
			}
		}
		levels = append(levels, ids)
		level = next
	}
	u.tree.Unlock()
	var ids []uint64
	for i := len(levels) - 1; i >= 0; i-- {
		ids = append(ids, levels[i]...)
	}
	if s := u.server.Load(); s != nil && len(ids) > 0 {
		s.PruneNotify(ids)
	}
}
