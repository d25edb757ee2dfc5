package fstest

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/acetate/acetate/internal/testtree"
	"github.com/acetate/acetate/internal/treecmp"
	"golang.org/x/sys/unix"
)

// Run runs every case of Cases on every target over a fresh mount each,
// then compares the tree each target leaves with the first target's, and
// checks every target's upper directory under every other target that
// keeps one. Names are case/target, so `-run 'Conformance/rename/fuse'`
// narrows a run.
func Run(t *testing.T, targets ...Target) {
	RunCases(t, Cases(), targets...)
}

// RunCases is Run with a table of one's own.
func RunCases(t *testing.T, cases map[string]Case, targets ...Target) {
	testtree.RequireRoot(t)
	fixture := filepath.Join(t.TempDir(), "fixture")
	Fixture(t, fixture)
	pub := &published{tmpDir: t.TempDir()}
	start := time.Now().UnixNano()
	cmp := treecmp.Options{RecentMtime: start, IgnoreDirMtime: true, IgnoreXattrPrefixes: []string{"trusted.overlay."}}
	names := make([]string, 0, len(cases))
	for name := range cases {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		c := cases[name]
		t.Run(name, func(t *testing.T) {
			// The reference lives as long as the case, for the others to
			// be compared with it.
			ref := targets[0].Mount(t, newEnv(t, fixture, pub))
			if !t.Run(targets[0].Name, func(t *testing.T) { c(t, ref) }) {
				return
			}
			for _, tg := range targets[1:] {
				t.Run(tg.Name, func(t *testing.T) {
					if why, ok := tg.Deviations[name]; ok {
						t.Skipf("known deviation of %s: %s", tg.Name, why)
					}
					e := newEnv(t, fixture, pub)
					mnt := tg.Mount(t, e)
					c(t, mnt)
					if err := treecmp.Compare(ref, mnt, cmp); err != nil {
						t.Errorf("%s leaves a different tree than %s: %v", tg.Name, targets[0].Name, err)
					}
					if tg.Upper && crossChecked(name) {
						crossCheck(t, tg, e, mnt, targets, cmp)
					}
				})
			}
		})
	}
}

// crossChecked reports whether case name has its upper directory read
// again under the other targets. The posix group checks what each system
// call does, one errno and one mode at a time: what its cases leave in an
// upper directory is a few plain files the other groups' cross-checks
// cover, and reading each again under every other target would triple
// the group's time (a fresh mount per target and case).
func crossChecked(name string) bool { return !strings.HasPrefix(name, "posix/") }

// crossCheck mounts the upper directory a case left under target from
// under every other target that keeps one, and compares with what from
// showed.
func crossCheck(t *testing.T, from Target, e *Env, mnt string, targets []Target, cmp treecmp.Options) {
	unix.Sync()
	for _, other := range targets {
		if !other.Upper || other.Name == from.Name {
			continue
		}
		t.Run("upper-under-"+other.Name, func(t *testing.T) {
			cross := newEnv(t, e.Fixture, e.published)
			cross.Upper = e.Upper
			got := other.Mount(t, cross)
			if err := treecmp.Compare(mnt, got, cmp); err != nil {
				t.Errorf("upper written under %s reads differently under %s: %v", from.Name, other.Name, err)
			}
		})
	}
}
