// Package registry pushes templates to and pulls them from an OCI
// distribution registry, through go-containerregistry's remote client with
// credentials from the usual docker and podman auth files.
//
// # What a push writes
//
// REPO:TAG is a normal OCI image (one gzip layer per acetate layer, see
// package oci), so docker, podman, skopeo and umoci pull it as any image.
// Its manifest carries one annotation, ConfigAnnotation: the digest of the
// config of an OCI artifact that a push writes beside it, tagged
// TAG.acetate (artifactType ArtifactType, subject: the image). The artifact
// lets another acetate host fetch only the file objects it lacks:
//
//   - its config lists the template's acetate layers, each with the digest
//     of a layer blob, and the template's config;
//   - a layer blob (zstd tar) lists the chunks of the layer's manifest and
//     the layer's packs;
//   - a chunk holds a run of manifest entries (see chunkEntries): two layers
//     that differ by a few paths share all other chunks, and a puller
//     rebuilds the chunks of the layers it has, so it fetches only the
//     chunks it lacks; the joined manifest is checked against the layer
//     digest;
//   - a pack (zstd tar of files named by their digests) holds one object of
//     BigObject bytes or more, or a run of smaller ones. A layer's objects,
//     in manifest order, are cut into packs after every object whose digest
//     starts with "0" and around every big one: each cut depends only on the
//     object beside it, so a change to a few files changes only the packs
//     around them, and unchanged packs keep their digests across pushes (the
//     registry already has them; a puller already has their objects).
//
// # What a pull fetches
//
// The puller reads the image manifest and the artifact config, fetches the
// layer blobs and the manifest chunks of layers it lacks, computes the
// objects its store lacks, and fetches only the packs holding them. Every
// blob is checked against its digest and read no further than its declared
// size (packs and chunks are declared with their sizes in the layer blob;
// the config and layer blobs, declared by digest only, are read up to 16
// MiB), and every request is abandoned with ErrStalled when it moves fewer
// than StallBytes in Options.StallTimeout. The store stages every object
// and checks it against its name; objects are committed every 2 seconds
// and when a transfer is interrupted, so an interrupted pull (even by kill
// -9) resumes where it stopped, and the template ref is written last, so a
// pull never leaves a partial template. An image without the
// annotation (pushed by another tool), or whose artifact is gone, is
// imported layer by layer instead.
//
// # Stacks: a container's differences
//
// PushStack writes layers that stand on a template (a container's
// differences, see package fs/container/archive) as an artifact of type
// StackArtifactType in the same format (layer blobs, chunks, packs), its
// config naming the template (name and layers) and carrying the caller's
// payload. Its subject is the template's image, tagged TemplateTag in the
// same repository and pushed only when the registry lacks it. PullStack
// fetches the template only where the store lacks its layers, and of the
// stack's layers only the objects the store lacks, so a container that
// changed a few files on a template both hosts have moves as about those
// files. Options.Traffic counts the bytes each way.
package registry
