package fuse

import (
	"fmt"
	"syscall"
	"testing"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// treeOf is a mount's tree with nothing mounted: a root whose inode number
// is 2.
func treeOf() *union {
	u := &union{}
	u.root = &node{u: u, lower: "/"}
	u.initTree(u.root, 2)
	return u
}

// adoptNew has the kernel learn of a new node at name in parent, with
// inode number ino, type typ and nlink links.
func adoptNew(u *union, parent *node, name string, ino uint64, typ uint32, nlink uint32) *node {
	out := fuse.EntryOut{Attr: fuse.Attr{Ino: ino, Mode: typ | 0o644, Nlink: nlink}}
	return u.adopt(parent, name, &node{u: u}, &out)
}

// A tree that grew to a peak gives the room back: a directory's map of
// children is made anew once it holds a quarter of its peak, and the
// node ids of forgotten nodes are used again, so that what a mount holds
// after the kernel forgets most of a boot's names is what it still knows.
func TestTreeShrinksAfterItsPeak(t *testing.T) {
	u := treeOf()
	var kids []*node
	for i := range 100 {
		kids = append(kids, adoptNew(u, u.root, fmt.Sprint("f", i), uint64(10+i), syscall.S_IFREG, 1))
	}
	if len(u.ids) != 102 || u.root.kidsRoom != 100 {
		t.Fatalf("after 100 lookups: %d ids, room for %d children", len(u.ids), u.root.kidsRoom)
	}
	firstID := kids[0].nodeID
	for _, n := range kids[:90] {
		u.forget(n.nodeID, 1)
	}
	if len(u.root.kids) != 10 || u.root.kidsRoom > 25 {
		t.Errorf("after 90 forgotten: %d children, room for %d (want 10, room for at most 25)", len(u.root.kids), u.root.kidsRoom)
	}
	again := adoptNew(u, u.root, "new", 500, syscall.S_IFREG, 1)
	if again.nodeID >= 102 || len(u.ids) != 102 {
		t.Errorf("a new node after 90 forgotten got id %d, the table has %d: want a freed id used again", again.nodeID, len(u.ids))
	}
	if u.node(firstID) == kids[0] {
		t.Errorf("a forgotten node is still known by its id")
	}
}

// The names of a node follow what the requests did to it: a hardlink is
// one node under two names, a lookup of a name it already has counts for
// the same node, and renames and unlinks move and drop names, the node
// keeping the one left.
func TestTreeNames(t *testing.T) {
	u := treeOf()
	dir := adoptNew(u, u.root, "d", 3, syscall.S_IFDIR, 2)
	a := adoptNew(u, u.root, "a", 7, syscall.S_IFREG, 2)
	if b := adoptNew(u, dir, "b", 7, syscall.S_IFREG, 2); b != a {
		t.Fatal("two names of one file with two links are two nodes")
	}
	if again := adoptNew(u, u.root, "a", 7, syscall.S_IFREG, 2); again != a || a.lookups != 3 {
		t.Fatalf("a lookup of a known name: same node %v, lookups %d (want 3)", again == a, a.lookups)
	}
	if got := a.rel(); got != "d/b" {
		t.Errorf("newest name %q, want d/b", got)
	}
	u.unlinked(dir, "b")
	if got := a.rel(); got != "a" {
		t.Errorf("after the unlink of d/b: %q, want a", got)
	}
	u.renamed(u.root, "a", dir, "c")
	if got := a.rel(); got != "d/c" || u.root.kids["a"] != nil {
		t.Errorf("after a rename to d/c: %q, a still named: %v", got, u.root.kids["a"] != nil)
	}
	other := adoptNew(u, u.root, "e", 9, syscall.S_IFREG, 1)
	u.exchanged(dir, "c", u.root, "e")
	if a.rel() != "e" || other.rel() != "d/c" {
		t.Errorf("after an exchange: %q and %q, want e and d/c", a.rel(), other.rel())
	}
	u.unlinked(u.root, "e")
	if !a.orphan() {
		t.Errorf("a node with its last name unlinked has a name: %q", a.rel())
	}
	// A file replaced under its name (a new inode) is a new node; the old
	// one has no name left.
	if n := adoptNew(u, dir, "c", 11, syscall.S_IFREG, 1); n == other || !other.orphan() {
		t.Errorf("a new inode under a known name: same node %v, old one named %v", n == other, !other.orphan())
	}
}
