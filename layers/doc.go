// Package layers is acetate's content-addressed store of file objects and
// layer manifests.
//
// A file object is the content of one regular file, named by the sha256 of
// that content and stored once however many layers use it. A layer manifest
// is the full metadata of one tree (paths, types, modes, owners, times,
// xattrs, symlink targets, device numbers, hardlink groups, and for regular
// files the digest of their content), encoded deterministically so that the
// same tree always yields the same layer digest.
//
// # On-disk layout
//
// Under the store root:
//
//	objects/<2 hex>/<64 hex>   file content, read-only after it is written
//	layers/<64 hex>/manifest   the zstd-compressed manifest of one layer
//	tmp/                       staging on the same filesystem (atomic renames)
//	lock                       flock: shared by writers, exclusive for GC
//
// # Writing a layer
//
// Ingest reads a tree (a directory or a tar stream), writes new objects to
// tmp/, makes them durable with one syncfs, renames them into place, and only
// then writes the manifest. A crash at any point leaves at worst unreferenced
// files in tmp/, which GC removes; an object or manifest under its final name
// is always complete.
//
// # Sparse files and hostile streams
//
// A file's cost is its data. Holes are found with SEEK_DATA/SEEK_HOLE and
// hashed as the zeros they read as, so an object's digest is the sha256 of
// the dense content, but they are never read, staged or exported as data:
// objects keep them, ExportDir writes them as holes and ExportSparseTar as
// GNU sparse entries. A hole at the start of a file (truncate -s, then a
// write at the end: disk images, database files) is hashed from the
// SHA-256 state after its whole GiBs of zeros, a constant up to 128 GiB
// (zerostates.go): a 100 GB such file is staged in about a second. Any
// other hole's zeros still cost about a second per 2 GB to hash (SHA-256
// has no shortcut for a run of zeros after other data), which is why
// ReadTar refuses streams whose sparse entries declare more than
// DefaultMaxTarHoles of holes. ReadTar also reads
// a compressed stream to its end, so that its checksum is verified, and
// refuses more than MaxTarTrailer bytes after the end-of-archive marker.
//
// # Reading a layer
//
// Manifests are verified against their digest when loaded, and object
// readers verify content against the digest as it streams, so corruption is
// reported instead of returning wrong bytes.
package layers
