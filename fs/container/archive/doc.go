// Package archive writes a container to one archive and reads it back:
// backups (acetate export and import) and, the same data in another
// wrapping, moves between stores.
//
// An archive holds a container's configuration, its differences and the
// identity of its template: the differences are a layer of the store made
// from the container's upper directory entry by entry (fs/upper.Snapshot),
// so they come back exactly (whiteouts, overlay xattrs, metacopy files,
// hardlinks, holes), and their file content is objects of the store, so an
// archive carries only the objects the target may lack.
//
// # Format
//
// An archive is a plain tar stream (POSIX PAX), which tar(1) lists and
// extracts. Its entries, all regular files, in this order:
//
//	index.json           the Index, as JSON (always the first entry)
//	layers/<64 hex>      a layer manifest as the store keeps it
//	                     (layers/<hex>/manifest: the manifest encoding of
//	                     package layers, zstd-compressed); <hex> is the
//	                     sha256 of the uncompressed manifest
//	objects/<64 hex>     a file object: content whose sha256 is <hex>
//
// The index names the container (Name, and Container: its record with
// template name, template layers and settings), the layer of its
// differences (State), the snapshots carried along (each with its own
// layer and record), and lists every layer and object that follows, with
// object sizes. The template's layers are in the archive only with
// --with-template (Template is then its record too); otherwise the target
// store must have them already, and import says which it lacks.
//
// An incremental archive (export --since SNAP) names in Since the snapshot
// it continues from (name and layer) and carries only the objects that
// neither that snapshot nor the template already hold, plus the snapshots
// taken after it. Import applies it to a container that has that very
// snapshot (imported from the previous archive of the chain, which
// carried it), and refuses it anywhere else. A full archive carries every
// snapshot of the container, so a chain full, --since s1, --since s2
// restores in that order.
//
// # Reading a hostile archive
//
// Import reads the whole stream and checks everything before it changes
// anything: the index first (a known Format, valid names and digests),
// then every entry against the index (no entry that it does not list, none
// twice, none missing at the end, each of the right size and digest;
// manifests are verified and validated as the store verifies its own),
// then that every object the layers use is in the archive or the store.
// Only then are objects committed, layers written and the container made,
// in the store's tmp/ first and renamed into place, so a corrupt or cut
// archive, or a kill at any point, leaves the store and the container as
// they were (at worst unreferenced files GC removes). Its paths never
// reach the host's filesystem: entries are named by digest, and the
// differences are written by the store's exporter into a directory the
// import made. Of the settings an archive carries, those that reach the
// host rather than the container (bind mounts of host paths, a seccomp
// profile or none, the host's network, published ports) are left out, and
// listed in the Report, unless the caller trusts the archive
// (ImportOptions.TrustSettings: a backup of one's own, a move between
// one's own stores); the rest (command, environment, limits, volumes) are
// the container's, applied as a restore applies them. Pull does the same.
package archive
