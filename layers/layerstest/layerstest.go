// Package layerstest puts trees into a layer store for tests.
package layerstest

import (
	"context"
	"testing"

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

// StoreOf opens a new store at root and commits the tree under dir into
// it as one layer (CommitDir); it fails t on an error.
func StoreOf(t testing.TB, root, dir string) (*layers.Store, digest.Digest) {
	t.Helper()
	store, err := layers.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	layer, err := CommitDir(store, dir)
	if err != nil {
		t.Fatal(err)
	}
	return store, layer
}
