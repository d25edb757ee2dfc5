// Package storetest holds what the tests of packages that use a template
// store share.
package storetest

import (
	"context"
	"os"
	"testing"

	"github.com/acetate/acetate/templates"
)

// FsckClean fails the test unless every object of st still hashes to its
// digest and every reference resolves.
func FsckClean(t testing.TB, st *templates.Store) {
	t.Helper()
	r, err := st.Fsck(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Check(); err != nil {
		t.Fatal(err)
	}
}

// TmpEmpty fails the test unless the store's tmp/ holds nothing: no staged
// object, no temporary file or directory is left behind.
func TmpEmpty(t testing.TB, st *templates.Store) {
	t.Helper()
	left, err := os.ReadDir(st.Layers.TmpDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range left {
		t.Errorf("%s/%s left behind", st.Layers.TmpDir(), e.Name())
	}
}
