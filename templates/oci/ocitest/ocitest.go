// Package ocitest holds what the tests of packages oci and registry share.
package ocitest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/acetate/acetate/templates"
)

// Listing names every ref, layer and object of a store, so that a test can
// check that a failed import or pull left the store as it was.
func Listing(t testing.TB, st *templates.Store) []string {
	t.Helper()
	var names []string
	root := st.Layers.Root()
	for _, sub := range []string{"templates", "layers", "objects"} {
		err := filepath.WalkDir(filepath.Join(root, sub), func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			names = append(names, strings.TrimPrefix(p, root))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return names
}

// NewStore opens a store in a new temporary directory.
func NewStore(t testing.TB) *templates.Store {
	t.Helper()
	st, err := templates.Open(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	return st
}
