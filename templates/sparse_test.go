package templates_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acetate/acetate/layers"
	"github.com/acetate/acetate/templates"
)

// tool runs a command and returns the first field of its output.
func tool(t *testing.T, name string, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s is not installed", name)
	}
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return append(strings.Fields(string(out)), "")[0]
}

// sparseFile makes a file of size bytes holding a few runs of non-zero
// data and holes elsewhere, ending in a hole.
func sparseFile(t *testing.T, p string, size int64) {
	t.Helper()
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, off := range []int64{0, 1 << 20, size / 2, size - 3<<20} {
		if _, err := f.WriteAt([]byte(strings.Repeat("data here!", 6000)), off); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
}

// sha256 is the digest of the file at p, as openssl computes it.
func sha256(t *testing.T, p string) string {
	t.Helper()
	return "sha256:" + tool(t, "openssl", "dgst", "-sha256", "-r", p)
}

// timed runs f and logs how long it took.
func timed(t *testing.T, what string, f func()) {
	t.Helper()
	start := time.Now()
	f()
	t.Logf("%s: %v", what, time.Since(start).Round(time.Millisecond))
}

// A sparse file keeps its holes end to end (the attack: a 100 GB sparse
// file made publish hash and store zeros and export stream them): its
// object has the digest openssl gives its dense content, yet takes the
// disk of its data only, and the directory export, the tar export (GNU
// sparse entries) extracted by GNU tar, and that tar published again all
// have the source's content and du.
func TestSparseFileKeepsHoles(t *testing.T) {
	const size = 2 << 30
	src := t.TempDir()
	big := filepath.Join(src, "big")
	sparseFile(t, big, size)
	want, du := sha256(t, big), tool(t, "du", "-B1", big)
	st := newStore(t)
	var tp *templates.Template
	timed(t, "publish", func() { tp = publish(t, st, "sparse", src, templates.PublishOptions{}) })
	checkSparseObject(t, st, tp, want, du)

	dir := filepath.Join(t.TempDir(), "dir")
	timed(t, "export to a directory", func() { export(t, st, tp, dir) })
	checkSparseCopy(t, filepath.Join(dir, "big"), want, du)

	tarball := filepath.Join(t.TempDir(), "out.tar")
	timed(t, "export to a tar file", func() { export(t, st, tp, tarball) })
	if fi, err := os.Stat(tarball); err != nil || fi.Size() > 1<<20 {
		t.Fatalf("the tar export of a %d-byte sparse file is not small: %v %v", int64(size), fi.Size(), err)
	}
	untarred := t.TempDir()
	tool(t, "tar", "-C", untarred, "-xf", tarball)
	checkSparseCopy(t, filepath.Join(untarred, "big"), want, du)

	again := newStore(t)
	timed(t, "publish the tar export", func() { tp = publish(t, again, "sparse", tarball, templates.PublishOptions{}) })
	checkSparseObject(t, again, tp, want, du)
}

// checkSparseObject checks that the object of /big in tp is the content
// whose digest is want and takes du bytes of disk, as the source.
func checkSparseObject(t *testing.T, st *templates.Store, tp *templates.Template, want, du string) {
	t.Helper()
	entries, err := st.Entries(tp)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Path != "/big" {
			continue
		}
		if string(e.Digest) != want {
			t.Fatalf("the object digest is %s, openssl says %s", e.Digest, want)
		}
		if got := tool(t, "du", "-B1", st.Layers.ObjectFile(e.Digest)); got != du {
			t.Fatalf("the object takes %s bytes of disk, the source %s", got, du)
		}
		return
	}
	t.Fatal("no /big in the template")
}

// checkSparseCopy checks a copy of the sparse file against the source's
// digest and du.
func checkSparseCopy(t *testing.T, p, want, du string) {
	t.Helper()
	if got := sha256(t, p); got != want {
		t.Fatalf("%s: sha256 %s, the source's %s", p, got, want)
	}
	if got := tool(t, "du", "-B1", p); got != du {
		t.Fatalf("%s: du %s bytes, the source's %s", p, got, du)
	}
}

// A tar of a few kilobytes declaring a 1 TB sparse file, made by GNU tar
// in its GNU format (refused at the default limit, 16 GiB of holes hashed)
// and in PAX format (at a limit of 1 GiB), is refused with ErrTooSparse
// within seconds, not after the hours of hashing zeros a terabyte takes,
// leaving the store unchanged.
func TestPublishRefusesSparseBomb(t *testing.T) {
	src := t.TempDir()
	if err := os.Truncate(mustCreate(t, filepath.Join(src, "f")), 1<<40); err != nil {
		t.Fatal(err)
	}
	st := newStore(t)
	before := snapshot(t, st.Layers.Root())
	for format, limit := range map[string]int64{"gnu": 0, "pax": 1 << 30} {
		t.Run(format, func(t *testing.T) {
			bomb := filepath.Join(t.TempDir(), "bomb.tar")
			tool(t, "tar", "--format="+format, "-S", "-C", src, "-cf", bomb, "f")
			fi, _ := os.Stat(bomb)
			start := time.Now()
			_, err := st.Publish(context.Background(), templates.MustParseRef("bomb"), bomb, templates.PublishOptions{Tar: layers.TarOptions{MaxHoles: limit}})
			took := time.Since(start)
			t.Logf("%d-byte tar declaring 1 TiB: refused after %v: %v", fi.Size(), took.Round(time.Millisecond), err)
			if !errors.Is(err, layers.ErrTooSparse) {
				t.Fatalf("publish of a sparse bomb: %v", err)
			}
			if took > time.Minute {
				t.Errorf("refusing took %v", took)
			}
			if after := snapshot(t, st.Layers.Root()); after != before {
				t.Fatalf("store changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
}

func mustCreate(t testing.TB, p string) string {
	t.Helper()
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	return p
}

// A file that starts with a long hole (truncate -s, then a write near the
// end: a disk image) is hashed from the SHA-256 state after its whole GiBs
// of zeros, not by hashing them: its object still has the digest openssl
// gives its dense content, and exports check out against it.
func TestLeadingHoleDigest(t *testing.T) {
	const size = 1<<30 + 5<<20
	src := t.TempDir()
	big := filepath.Join(src, "big")
	f := mustCreate(t, big)
	if err := os.Truncate(f, size); err != nil {
		t.Fatal(err)
	}
	w, err := os.OpenFile(big, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteAt([]byte("the data after a GiB of hole"), 1<<30+1<<20); err != nil {
		t.Fatal(err)
	}
	w.Close()
	want, du := sha256(t, big), tool(t, "du", "-B1", big)
	st := newStore(t)
	var tp *templates.Template
	timed(t, "publish", func() { tp = publish(t, st, "hole", src, templates.PublishOptions{}) })
	checkSparseObject(t, st, tp, want, du)
	tarball := filepath.Join(t.TempDir(), "out.tar")
	timed(t, "export to a tar file (checks the object's digest)", func() { export(t, st, tp, tarball) })
	untarred := t.TempDir()
	tool(t, "tar", "-C", untarred, "-xf", tarball)
	checkSparseCopy(t, filepath.Join(untarred, "big"), want, du)
}

// BenchmarkPublishSparse100G publishes a 100 GiB file whose only data is
// at its end (the containment issue's commit of a 100 GB sparse file):
// its cost is its data and less than a GiB of zeros.
func BenchmarkPublishSparse100G(b *testing.B) {
	src := b.TempDir()
	big := filepath.Join(src, "big")
	if err := os.Truncate(mustCreate(b, big), 100<<30); err != nil {
		b.Fatal(err)
	}
	w, err := os.OpenFile(big, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	w.WriteAt([]byte("end"), 100<<30-3)
	w.Close()
	for i := 0; b.Loop(); i++ {
		publish(b, newStore(b), "big", src, templates.PublishOptions{})
	}
}
