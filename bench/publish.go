package bench

import (
	"fmt"
	"path/filepath"

	"github.com/acetate/acetate/templates"
	"golang.org/x/sys/unix"
)

// benchPublish times publishing the rootfs into a fresh store, and
// re-publishing it unchanged, against `ostree commit` into a bare repo and
// `tar | zstd -T0`. All peers read the copy without device nodes, which
// ostree refuses.
func benchPublish(e *env) error {
	src := e.data.noDev
	var store, repo, out string
	fresh := func() error {
		store, repo, out = e.dir("store"), e.dir("ostree"), e.dir("tar")
		return sh(fmt.Sprintf("ostree init --repo=%q --mode=bare", repo))
	}
	publish := func(name string) func() error {
		return func() error {
			st, err := templates.Open(store)
			if err != nil {
				return err
			}
			_, err = st.Publish(e.ctx, templates.MustParseRef(name), src, templates.PublishOptions{})
			return err
		}
	}
	ostree := needs("ostree")
	commit := func() error {
		return sh(fmt.Sprintf("ostree commit --repo=%q --branch=b --tree=dir=%q >/dev/null", repo, src))
	}
	// Each sample starts in fresh directories with nothing dirty in the
	// page cache, so no peer's sync pays for what an earlier sample wrote.
	// Old samples are not deleted until the run ends: on a filesystem
	// mounted with discard, freeing them would charge the next sync.
	cleanup := func() error {
		if err := fresh(); err != nil {
			return err
		}
		unix.Sync()
		return nil
	}
	rounds := e.rounds(5)
	err := e.interleave("publish", "first publish", rounds, []peer{
		{name: "acetate publish", setup: cleanup, run: publish("a")},
		{name: "ostree commit (bare)", missing: ostree, setup: cleanup, run: commit},
		{name: "tar | zstd -T0", missing: needs("zstd"), setup: cleanup, run: func() error {
			return sh(fmt.Sprintf("tar -C %q -cf - . | zstd -q -T0 -o %q", src, filepath.Join(out, "r.tar.zst")))
		}},
	})
	if err != nil {
		return err
	}
	// Re-publish: the store or repo already holds the tree.
	if err := cleanup(); err != nil {
		return err
	}
	if err := publish("a")(); err != nil {
		return err
	}
	if ostree == "" {
		if err := commit(); err != nil {
			return err
		}
	}
	settle := func() error { unix.Sync(); return nil }
	return e.interleave("publish", "re-publish unchanged", rounds, []peer{
		{name: "acetate publish", setup: settle, run: publish("a")},
		{name: "ostree commit (bare)", missing: ostree, setup: settle, run: commit},
	})
}
