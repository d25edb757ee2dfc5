// Package storetest holds what the tests of packages that use a template
// store share.
package storetest

import (
	"context"
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
