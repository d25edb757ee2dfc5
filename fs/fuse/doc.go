// Package fuse is the FUSE union driver: it serves a container's root from
// read-only lower layers and the container's upper directory, with
// github.com/hanwen/go-fuse/v2.
//
// The lower layers are a Lower: StoreLower serves a template's stack
// straight from the store's layer manifests and objects, its metadata from
// memory; DirLower serves plain directories merged as overlayfs merges its
// lowerdir list (cmd/acetate-fuse, a drop-in for fuse-overlayfs). The upper directory is in overlayfs format (see package fs), so
// kernel overlayfs mounted over the same layers shows the same tree:
//
//   - a file is copied up whole (data, then metadata) before its first
//     write or metadata change; hardlinks in a lower layer are copied up
//     together and stay linked;
//   - a deletion is a whiteout (character device 0/0), made with
//     RENAME_WHITEOUT where a rename leaves one behind;
//   - a directory created where one was deleted is opaque
//     (trusted.overlay.opaque=y);
//   - a directory that has content below and is renamed is copied up alone
//     and carries trusted.overlay.redirect with the absolute path of its
//     lower directory, as overlayfs does with redirect_dir=on; its content
//     stays below;
//   - a metacopy file written by overlayfs (trusted.overlay.metacopy) is
//     read with its data from below, at trusted.overlay.redirect or at the
//     same path, and is completed into a full copy before it is written.
//
// Inode numbers are stable: a template file keeps its number across copy-up
// and remounts (the upper file records it in trusted.overlay.acetate.ino),
// and hardlinks share one. O_TMPFILE is answered with
// EOPNOTSUPP. POSIX and BSD locks are kept by the kernel within the mount.
//
// File reads and writes use FUSE passthrough where the kernel offers it
// (Linux 6.9+, and the server needs CAP_SYS_ADMIN, so in practice root): a
// template file opened read-only is backed by its object, opened O_RDONLY,
// and a file opened for writing by its copy in the upper directory. Without
// passthrough the same files are served through the server, with the page
// cache kept between opens.
//
// Caching: lower entries never change and the upper directory changes only
// through the server, so the kernel keeps entries, attributes, symlink
// targets and directory listings for a day, and the page cache of
// template files between opens. The server answers OPENDIR with ENOSYS
// (Linux 5.1+), so that a walk of a cached tree costs it no request at
// all, and it answers listings with READDIRPLUS, which fills the kernel's
// caches in one round trip per page of entries. The store's server asks
// the kernel to forget the entries no process uses (FUSE_NOTIFY_PRUNE) in
// each mount that has gone quiet after looking names up, and the nodes it
// kept for them go: for a booted container it then holds the few dozen
// files its processes have open, not the hundreds its boot looked up once.
//
// Host safety: the server runs as root on files a container controls, so
// every access to the upper directory and to DirLower's directories is
// resolved from directory descriptors with package beneath (openat2
// RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS, *at calls on the parent's
// descriptor). A container that swaps a symbolic link to a host path, or a
// device node, in under a name the server is about to open gets an error
// for its own request, never a host file; a path inside the mount may be
// as long as PATH_MAX allows, whatever the upper directory's own path.
// Modes are passed through exactly (0000 included); a write, open for
// writing or truncate by a caller without CAP_FSETID clears set-id bits as
// Linux does (with passthrough the kernel writes as the server, which keeps
// them); mknod of a character device 0/0, the whiteout format, is refused
// with EPERM as overlayfs does; a merged directory reports one link, as on
// overlayfs. Mounts are nodev, and nosuid when ServeOptions.NoSuid is set
// (Driver always sets it).
//
// Disk quotas are not counted here: with passthrough the kernel writes to
// the upper files without asking the server, which could only count and
// refuse writes by serving them itself (a 64 KiB dd ran at 0.9 GB/s so,
// against 4.5 GB/s passed through; 2026-12-01). A container with a quota
// has its upper directory on a filesystem of the quota's size instead (see
// fs/container and fs/diskimage), which refuses writes past it with ENOSPC
// whoever makes them; statfs answers with the upper directory's
// filesystem, so df in the container shows the quota.
//
// Serve mounts in the calling process, over any Lower (cmd/acetate-fuse:
// one process per mount, as fuse-overlayfs users expect). Driver has every
// mount of a store served by one background process, the store's FUSE
// server, started on demand by re-executing the current binary (so the
// binary's main must call ServeIfRequested first): each mount is a FUSE
// connection of its own (its own /dev/fuse descriptor and go-fuse Server)
// over a StoreLower shared by every mount of the same stack, decoded once
// and dropped when no mount uses it. A mount then costs a connection and
// its upper directory's descriptors, not a manifest decode (see Driver,
// and storeServer for what one mount cannot do to the others).
//
// The server speaks go-fuse's raw protocol API (rawFS) and keeps the
// nodes the kernel knows in a tree of its own per mount (tree.go): a node
// id indexes a slice, ids are used again, and a directory's map of
// children is made anew once it has shrunk to a quarter, so that a mount
// holds what the kernel still knows, not the room of its busiest moment
// (go-fuse's node API kept a map of node ids and one of children per node
// at their peaks). Each directory node keeps an O_PATH descriptor of its
// directory in the upper directory once it has one (closed when the kernel
// forgets the node), so that a request on a name in it costs no path
// resolution.
//
// Not done yet: O_TMPFILE is refused; a descriptor opened read-only before
// a copy-up keeps reading the template's data, as overlayfs before Linux
// 4.19 did (with passthrough the copied-up file is a new kernel inode: see
// node.upperHandle).
package fuse
