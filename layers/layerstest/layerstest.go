// Package layerstest puts trees into a layer store for tests.
package layerstest

import (
	"context"

	"github.com/acetate/acetate/layers"
	"github.com/opencontainers/go-digest"
)

// CommitDir reads the tree under dir into store and commits it as one
// layer, as publishing a rootfs does (less the template), and returns
// the layer's digest.
func CommitDir(store *layers.Store, dir string) (digest.Digest, error) {
	tree, err := store.ReadDir(context.Background(), dir, nil)
	if err != nil {
		return "", err
	}
	return tree.Commit(tree.Manifest)
}
