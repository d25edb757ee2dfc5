// Package overlay is the kernel overlayfs driver: it mounts a container as
// overlayfs with data-only lower layers (Linux 6.5+; the mount API's
// lowerdir+ and datadir+ keys need Linux 6.8+), so that no template file is
// copied per container, every file keeps the exact metadata its template
// gives it, and content is shared with the store.
//
// Each layer has a metadata tree, built once under the layer's directory in
// the store and shared by every container that uses the layer: directories,
// symlinks and device nodes as themselves, and for every regular file an
// empty sparse file of the right size with the real mode, owner, mtime and
// xattrs, carrying trusted.overlay.metacopy and trusted.overlay.redirect
// pointing at its object through the layer's data directory, a directory
// of hardlinks to the layer's objects under 22-byte names, so that both
// xattrs fit in the file's inode. A container is then mounted as
//
//	lowerdir+=META_TOP ... lowerdir+=META_BOTTOM,
//	datadir+=DATA_TOP ... datadir+=DATA_BOTTOM, datadir+=OBJECTS,
//	upperdir=UPPER, workdir=WORK, metacopy=on, redirect_dir=on, index=off
//
// Reads go to the objects; a write copies the file up into the upper
// directory and never touches an object. A chmod or chown of a template
// file copies up metadata only.
//
// Hardlinks of a template are split by a write: index=off. Writing to
// /usr/bin/gunzip copies it up alone; /usr/bin/uncompress, its other name,
// keeps the template's content and shows its own inode number with two
// links. The fuse driver keeps the group (it copies every name up
// together). index=on mounts over data-only layers on Linux 6.18 and keeps
// the group, checked by hand: but overlayfs then copies the file up into
// the work directory's index and links the other names into the upper
// directory only when they are looked up, so the upper directory alone no
// longer says what the container holds (uncompress is not in it) — the
// fuse driver, diff, commit, clone and export read only the upper
// directory — and a container whose layers change (rebase) no longer
// mounts against its index. So index stays off.
package overlay
