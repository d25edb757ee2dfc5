// Package registry pushes templates to and pulls them from an OCI
// distribution registry, through go-containerregistry's remote client with
// credentials from the usual docker and podman auth files.
//
// # What a push writes
//
// REPO:TAG is a normal OCI image (one gzip layer per acetate layer, see
// package oci), so docker, podman, skopeo and umoci pull it as any image.
// Beside it, REPO:TAG.acetate is an OCI artifact (artifactType
// ArtifactType, subject: the image) that lets another acetate host fetch
// only the file objects it lacks:
//
//   - its config lists the template's acetate layers, each with the digest
//     of its layer manifest blob and of its packs, and the template config;
//   - a layer manifest blob is the store's zstd manifest encoding;
//   - an object of BigObject bytes or more is a blob of its own, so the
//     blob digest is the object digest;
//   - smaller objects go into packs (a zstd tar of objects named by
//     digest). A layer's small objects, in manifest order, are cut into
//     packs after every object whose digest starts with "0": a boundary
//     depends only on that object, so a change to a few files changes only
//     the packs around them, and unchanged packs keep their digest across
//     pushes (the registry already has them; a puller already has their
//     objects).
//
// # What a pull fetches
//
// The puller reads the artifact config, fetches the layer manifests it does
// not have, computes the objects its store lacks, and fetches only the blobs
// holding them. Each blob's digest and each object's digest are checked
// before anything enters the store; objects are committed in batches, so an
// interrupted pull resumes where it stopped, and the template ref is written
// last, so a pull never leaves a partial template. When the registry has no
// artifact for the image (it was not pushed by acetate, or was re-tagged by
// another tool), the image layers are imported instead.
package registry
