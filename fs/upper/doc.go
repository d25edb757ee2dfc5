// Package upper reads and writes a container's upper directory in overlayfs
// format, the format both union drivers share (see package fs):
//
//   - new and copied-up files are plain files with their full metadata;
//   - a deletion is a whiteout, a character device 0/0;
//   - a directory that replaces one below carries trusted.overlay.opaque=y;
//   - a renamed directory carries trusted.overlay.redirect, the path its
//     content comes from below;
//   - a file whose metadata alone changed may be a metacopy file
//     (trusted.overlay.metacopy): a sparse file of the right size whose data
//     is found below, at the same path or at trusted.overlay.redirect.
//
// Read turns an upper directory into a layer manifest relative to the merged
// entries of the template below it, Changes lists what differs as docker
// diff does, and Layer stages the result in a store so that commit can make
// a deduplicated layer of it. Snapshot reads an upper directory verbatim
// instead (whiteouts, overlay xattrs and metacopy files as they are) into a
// layer that Restore turns back into the same upper directory.
//
// Xattrs of the template that are themselves named trusted.overlay.* are
// kept escaped on disk as trusted.overlay.overlay.*, as overlayfs does.
//
// An upper directory is hostile input: the container owns it and changes
// it while the host reads it, and can swap any name for a symbolic link to
// a host file or directory. Read, Changes, Layer, Snapshot, Copy, Digest
// and Materialize therefore reach every entry from its parent directory's
// descriptor, never following a symbolic link (package internal/beneath),
// and never open anything but a regular file or a directory; only the
// upper directory's own path, which the host owns, is resolved as a path.
// As nothing below it is, a tree of any depth works.
package upper
