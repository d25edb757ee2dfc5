// Package fs serves a container's root: the union of a template's layers
// (read-only, from the store) and the container's own upper directory.
//
// The upper directory is in overlayfs format, and that format is the
// contract between the drivers: copied-up and new files are plain files,
// deletions are whiteouts (character devices 0/0), replaced directories carry
// trusted.overlay.opaque=y, and a file whose metadata alone changed may be a
// metacopy file (trusted.overlay.metacopy, data found below or at
// trusted.overlay.redirect). A container changed under one driver mounts
// under the other with the same view.
//
// Drivers live in subpackages: fs/overlay (kernel overlayfs with data-only
// lower layers, Linux 6.5+) and fs/fuse (go-fuse, with passthrough on Linux
// 6.9+ as root).
package fs

import (
	"context"

	"github.com/acetate/acetate/layers"
	"github.com/opencontainers/go-digest"
)

// Spec describes one union mount.
type Spec struct {
	// Store holds the layers and their objects.
	Store *layers.Store
	// Layers is the template's stack, bottom first.
	Layers []digest.Digest
	// Upper and Work are the container's writable directory and the
	// scratch directory overlayfs needs, on the same filesystem.
	Upper, Work string
	// Target is the mount point.
	Target string
	// ReadOnly mounts without the upper layer's write access.
	ReadOnly bool
}

// Driver mounts and unmounts union filesystems.
type Driver interface {
	// Name is the driver's name as the CLI spells it ("overlay", "fuse").
	Name() string
	// Mount makes Spec.Target show the union; it returns once the mount is
	// live.
	Mount(ctx context.Context, s Spec) error
	// Unmount removes the mount at target, cleaning up a stale one.
	Unmount(target string) error
}
