package fuse

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// The mount's tree: which nodes the kernel knows, by which node id and
// under which names. It is the server's own, dense and per mount, where
// go-fuse's node API kept a map of node ids and a map of children for
// every node, each at the size of its peak: a booted systemd looks some
// 600 names up and keeps some 90 after the prune, and those maps (with
// 100 booted containers, 6.8 MB of the FUSE server's heap) kept the room
// of all 600. Here a node id indexes a slice of pointers, the lowest free
// id is used again, and a directory's map of children is made anew when
// it has shrunk to a quarter.
//
// Everything in this file is guarded by union.tree.

// link is one name of a node: the directory holding it and its name there.
type link struct {
	parent *node
	name   string
}

// identity is what tells the kernel's inodes apart: the inode number, its
// generation (see node.rebind) and the file type.
type identity struct {
	ino, gen uint64
	typ      uint32
}

// nodeExtra is what few nodes need: names beyond the first (hardlinks), the
// open handles and the passthrough backing file registered for them.
type nodeExtra struct {
	more  []link
	opens []*file
	// backing is the kernel's id of the node's backing file, 0 for none;
	// backingRefs counts the handles passing through to it.
	backing     int32
	backingRefs int32
}

// rootID is the root's node id in the FUSE protocol.
const rootID = fuse.FUSE_ROOT_ID

// initTree makes root, whose inode number is ino, the mount's node 1.
func (u *union) initTree(root *node, ino uint64) {
	root.ident = identity{ino: ino, typ: syscall.S_IFDIR}
	root.nodeID, root.lookups = rootID, 1
	u.ids = []*node{nil, root}
	u.freeFrom = rootID + 1
}

// node returns the node the kernel knows as id, nil for an id it does not
// hold.
func (u *union) node(id uint64) *node {
	u.tree.Lock()
	defer u.tree.Unlock()
	return slot(u.ids, id)
}

// slot returns s[i], nil past its end: numbers the kernel sends back.
func slot[T any](s []*T, i uint64) *T {
	if i >= uint64(len(s)) {
		return nil
	}
	return s[i]
}

// isRoot reports whether n is its mount's root.
func (n *node) isRoot() bool { return n == n.u.root }

// parentLink returns the node's newest name and the directory holding
// it; parent is nil once the node has no name left (unlinked while open).
func (n *node) parentLink() (name string, parent *node) {
	n.u.tree.Lock()
	defer n.u.tree.Unlock()
	return n.name, n.parent
}

// orphan reports whether the node has no name left (unlinked while open).
func (n *node) orphan() bool {
	_, parent := n.parentLink()
	return parent == nil && !n.isRoot()
}

// rel is the node's path relative to the mount's root ("" for the root).
// A node without a name left gets a path that names nothing.
func (n *node) rel() string {
	n.u.tree.Lock()
	defer n.u.tree.Unlock()
	var names []string
	for p := n; !p.isRoot(); p = p.parent {
		if p.parent == nil {
			return fmt.Sprintf(".acetate-deleted-%d/%d", rand.Uint64(), n.nodeID)
		}
		names = append(names, p.name)
	}
	slices.Reverse(names)
	return strings.Join(names, "/")
}

// identity is the identity of a node with attributes a.
func (u *union) identity(a *fuse.Attr) identity {
	u.inoMu.Lock()
	defer u.inoMu.Unlock()
	return identity{ino: a.Ino, gen: u.gens[a.Ino], typ: a.Mode & syscall.S_IFMT}
}

// adopt tells the kernel of child name of parent, found or made with the
// attributes in out, and fills out's node id and timeouts; it returns the
// node the kernel now knows by that name. That is the node already known
// by the name, or by the inode number for a file with several links, when
// it has the same identity; else child, whose lookup counts once more.
func (u *union) adopt(parent *node, name string, child *node, out *fuse.EntryOut) *node {
	id := u.identity(&out.Attr)
	u.tree.Lock()
	defer u.tree.Unlock()
	n := parent.kids[name]
	if n == nil || n.ident != id {
		if h := u.hard[id.ino]; h != nil && h.ident == id {
			n = h
		} else {
			n = child
		}
	}
	if n.nodeID == 0 {
		n.ident = id
		u.register(n)
	}
	if old := parent.kids[name]; old != n {
		if old != nil {
			old.dropLink(parent, name)
		}
		n.addLink(parent, name)
	}
	if id.typ == syscall.S_IFREG && out.Attr.Nlink > 1 {
		if u.hard == nil {
			u.hard = map[uint64]*node{}
		}
		u.hard[id.ino] = n
	}
	n.lookups++
	out.NodeId = n.nodeID
	n.stamp(&out.Attr)
	out.SetEntryTimeout(cacheTimeout)
	out.SetAttrTimeout(cacheTimeout)
	return n
}

// register gives n the lowest free node id, or a new one. No id below
// u.freeFrom is free.
func (u *union) register(n *node) {
	id := u.freeFrom
	for id < uint64(len(u.ids)) && u.ids[id] != nil {
		id++
	}
	if id == uint64(len(u.ids)) {
		u.ids = append(u.ids, nil)
	}
	u.ids[id] = n
	n.nodeID, u.freeFrom = id, id+1
}

// addLink gives n the name name in parent.
func (n *node) addLink(parent *node, name string) {
	if parent.kids == nil {
		parent.kids = map[string]*node{}
	}
	parent.kids[name] = n
	if len(parent.kids) > parent.kidsRoom {
		parent.kidsRoom = len(parent.kids)
	}
	if n.parent != nil {
		x := n.extra()
		x.more = append(x.more, link{n.parent, n.name})
	}
	n.parent, n.name = parent, name
}

// dropLink takes the name name in parent from n, whose newest name is then
// the one it had before, if any.
func (n *node) dropLink(parent *node, name string) {
	if parent.kids[name] == n {
		delete(parent.kids, name)
		parent.shrinkKids()
	}
	if n.parent == parent && n.name == name {
		n.parent, n.name = nil, ""
		if x := n.x; x != nil && len(x.more) > 0 {
			last := x.more[len(x.more)-1]
			x.more = x.more[:len(x.more)-1]
			n.parent, n.name = last.parent, last.name
		}
	} else if x := n.x; x != nil {
		for i, l := range x.more {
			if l.parent == parent && l.name == name {
				x.more = append(x.more[:i], x.more[i+1:]...)
				break
			}
		}
	}
	n.trimExtra()
}

// shrinkKids makes the directory's map of children anew once it holds a
// quarter of what it once did: a Go map keeps the room of its peak.
func (n *node) shrinkKids() {
	switch {
	case len(n.kids) == 0:
		n.kids, n.kidsRoom = nil, 0
	case n.kidsRoom >= 32 && len(n.kids) < n.kidsRoom/4:
		kids := make(map[string]*node, len(n.kids))
		for name, c := range n.kids {
			kids[name] = c
		}
		n.kids, n.kidsRoom = kids, len(kids)
	}
}

// extra returns the node's nodeExtra, made at first use.
func (n *node) extra() *nodeExtra {
	if n.x == nil {
		n.x = &nodeExtra{}
	}
	return n.x
}

// trimExtra drops the node's nodeExtra once it holds nothing.
func (n *node) trimExtra() {
	if x := n.x; x != nil && len(x.more) == 0 && len(x.opens) == 0 && x.backing == 0 {
		n.x = nil
	}
}

// forget takes nlookup from the lookups of the node the kernel knows as id
// (FORGET); at none, the kernel has no inode of it left and the node goes.
func (u *union) forget(id, nlookup uint64) {
	u.tree.Lock()
	n := slot(u.ids, id)
	if n == nil || n.isRoot() {
		u.tree.Unlock()
		return
	}
	n.lookups -= min(nlookup, n.lookups)
	if n.lookups > 0 {
		u.tree.Unlock()
		return
	}
	u.ids[id] = nil
	u.freeFrom = min(u.freeFrom, id)
	n.nodeID = 0
	for n.parent != nil {
		n.dropLink(n.parent, n.name)
	}
	if u.hard[n.ident.ino] == n {
		delete(u.hard, n.ident.ino)
	}
	u.tree.Unlock()
	n.onForget()
}

// unlinked drops name from parent, which no longer has it (UNLINK, RMDIR).
func (u *union) unlinked(parent *node, name string) {
	u.tree.Lock()
	defer u.tree.Unlock()
	if n := parent.kids[name]; n != nil {
		n.dropLink(parent, name)
	}
}

// renamed moves the node at name in parent to newName in newParent,
// replacing what had that name (RENAME).
func (u *union) renamed(parent *node, name string, newParent *node, newName string) {
	u.tree.Lock()
	defer u.tree.Unlock()
	if old := newParent.kids[newName]; old != nil {
		old.dropLink(newParent, newName)
	}
	if n := parent.kids[name]; n != nil {
		n.dropLink(parent, name)
		n.addLink(newParent, newName)
	}
}

// exchanged swaps the nodes at name in parent and newName in newParent
// (RENAME_EXCHANGE).
func (u *union) exchanged(parent *node, name string, newParent *node, newName string) {
	u.tree.Lock()
	defer u.tree.Unlock()
	a, b := parent.kids[name], newParent.kids[newName]
	if a != nil {
		a.dropLink(parent, name)
	}
	if b != nil {
		b.dropLink(newParent, newName)
		b.addLink(parent, name)
	}
	if a != nil {
		a.addLink(newParent, newName)
	}
}

// stamp gives attributes a the node's identity and fills in its blocks.
func (n *node) stamp(a *fuse.Attr) {
	a.Ino = n.ident.ino
	a.Mode = a.Mode&07777 | n.ident.typ
	setBlocks(a)
}

// setBlocks fills in the block size and count of attributes that lack
// them, as a 4 KiB-block filesystem counts them.
func setBlocks(a *fuse.Attr) {
	if a.Blksize > 0 {
		return
	}
	a.Blksize = 4096
	a.Blocks = (a.Size + 4095) / 4096 * 8
}
