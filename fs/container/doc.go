// Package container manages containers: a template's stack of layers plus
// one upper directory of the container's own differences, in the
// overlayfs format of package fs/upper.
//
// A container lives in <root>/containers/<name>/:
//
//	config.json  the template it came from and that template's layer
//	             digests at creation, its run config, default driver, time,
//	             and its Settings (command, env, limits...: see Settings)
//	upper/       its differences
//	disk.img     instead of upper/ with a disk quota: an ext4 image
//	             holding it, mounted at disk/ (see disk.go)
//	rootfs/      the default mount point (made at the first mount); the
//	             overlay driver's work directory, below the union
//	work/        the fuse driver's work directory, while mounted (see
//	             workDir)
//	mounted      where and by which driver it is mounted, while it is: a
//	             symbolic link holding the record (see mountRecord)
//	run/         the launcher's state (RunDir), once it has run
//	snapshots/   SNAP.json for each snapshot (see Snapshot)
//
// A created container takes three inodes and, on ext4, 12 KiB (its
// directory, upper/ and config.json); mounted at rootfs/, no more under
// the overlay driver and 16 KiB under the fuse driver (work/), as du
// counts it: the blocks of a union mounted by hand (its directory, upper/,
// work/ and work/work). An older acetate's layout (state.json, work/ for
// both drivers) is read, and tidied at the next unmount.
//
// Creating a container does no per-file work: the per-layer metadata trees
// the overlay driver needs are built once per layer and shared, so a create
// writes three small inodes whatever the template's size. Create, clone,
// reset and remove stage their work in the store's tmp/ and finish with one
// rename, so a crash leaves the container as it was and GC removes the
// rest.
//
// A container's upper directory is its own and hostile: diff, commit,
// clone, reset and rebase reach it through descriptors only (see package
// fs/upper). Unmount, commit, reset and rebase refuse a running container
// (ErrRunning), which the runtime above tells the Manager of through
// SetRunning: its processes would change the tree under the tool.
//
// A snapshot (CreateSnapshot) is the upper directory read verbatim into a
// layer of the store (package fs/upper's Snapshot: whiteouts, overlay
// xattrs, metacopy files, hardlinks and holes as they are, content shared
// with every other layer), plus the container's record. A running
// container is snapshotted inside a FreezeFunc the runtime gives (its
// processes frozen while the upper directory is read). RestoreSnapshot
// rebuilds the upper directory from the layer in tmp/ and exchanges it in;
// GC keeps what snapshots use (Roots), and Remove removes them with the
// container.
//
// A typical life:
//
//	m, _ := container.Open(st)
//	m.Create("web1", "debian:12")
//	m.Mount(ctx, "web1", "overlay", "")   // union at containers/web1/rootfs
//	// ... the container changes files ...
//	m.Unmount("web1")
//	m.Diff("web1")                        // A/C/D, as docker diff
//	m.Commit(ctx, "web1", ref, nil)       // a template others create from
//	m.Rebase("web1", "debian:12.1")       // keep own changes, new base
package container
