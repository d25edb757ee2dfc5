package fuse

import (
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// readDir lists directory n into out from offset off, the number of
// entries read before: the upper directory's entries without whiteouts,
// then those below that the upper directory does not name, sorted by name
// so that offsets stay stable. The kernel keeps the listing cached until
// the directory changes through this mount, which is the only way it
// changes. With plus, each entry comes with its lookup (READDIRPLUS).
func (r *rawFS) readDir(n *node, off uint64, out *fuse.DirEntryList, plus bool) syscall.Errno {
	list, errno := n.list()
	if errno != 0 {
		return errno
	}
	for i := off; i < uint64(len(list)); i++ {
		e := list[i]
		e.Off = i + 1
		if !plus {
			if !out.AddDirEntry(e) {
				break
			}
			continue
		}
		entry := out.AddDirLookupEntry(e)
		if entry == nil {
			break
		}
		c, errno := r.lookup(n, e.Name, entry)
		if errno != 0 {
			// No node id: the kernel takes the entry as a plain one.
			*entry = fuse.EntryOut{}
			continue
		}
		if c.ident.typ != e.Mode&syscall.S_IFMT {
			out.FixMode(c.ident.typ)
		}
	}
	return 0
}
