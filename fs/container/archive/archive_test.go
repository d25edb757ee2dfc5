package archive_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/acetate/acetate/fs/container"
	"github.com/acetate/acetate/fs/container/archive"
	"github.com/acetate/acetate/internal/testtree"
	"github.com/acetate/acetate/internal/treecmp"
	"github.com/acetate/acetate/templates"
	"github.com/acetate/acetate/templates/storetest"
	"golang.org/x/sys/unix"
)

// store is a temporary store with its container manager.
type store struct {
	t  *testing.T
	st *templates.Store
	m  *container.Manager
}

func newStore(t *testing.T) *store {
	t.Helper()
	st, err := templates.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m, err := container.Open(st)
	if err != nil {
		t.Fatal(err)
	}
	s := &store{t: t, st: st, m: m}
	t.Cleanup(func() {
		cs, _ := m.List()
		for _, c := range cs {
			if c.Mount != nil {
				m.Unmount(c.Name)
			}
		}
		storetest.FsckClean(t, st)
	})
	return s
}

// src is the crafted template tree, made once per test binary.
var src string

func crafted(t *testing.T) string {
	t.Helper()
	testtree.RequireRoot(t)
	if src == "" {
		dir, err := os.MkdirTemp("", "archive-src-")
		if err != nil {
			t.Fatal(err)
		}
		testtree.Crafted(t, filepath.Join(dir, "src"))
		src = filepath.Join(dir, "src")
	}
	return src
}

func TestMain(m *testing.M) {
	code := m.Run()
	if src != "" {
		os.RemoveAll(filepath.Dir(src))
	}
	os.Exit(code)
}

func (s *store) publish() {
	s.t.Helper()
	if _, err := s.st.Publish(context.Background(), templates.MustParseRef("crafted"), crafted(s.t), templates.PublishOptions{}); err != nil {
		s.t.Fatal(err)
	}
}

// change mounts container name and changes it through the union: every
// kind of entry the upper format has.
func (s *store) change(name string, step int) {
	s.t.Helper()
	c, err := s.m.Mount(context.Background(), name, "overlay", "")
	if err != nil {
		s.t.Fatal(err)
	}
	mnt := c.Mount.Target
	p := func(n string) string { return filepath.Join(mnt, n) }
	var errs []error
	switch step {
	case 0:
		errs = append(errs, os.Remove(p("big")), unix.Chmod(p("bin/tool"), 0o700),
			os.Rename(p("home/user"), p("home/user2")), os.RemoveAll(p("names")), os.Mkdir(p("names"), 0o755),
			os.WriteFile(p("capped"), []byte("cap"), 0o755),
			unix.Setxattr(p("capped"), "security.capability", []byte{1, 0, 0, 2, 0, 32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 0))
		f, err := os.Create(p("holey"))
		if err == nil {
			_, err = f.WriteAt([]byte("end"), 16<<20)
			f.Close()
		}
		errs = append(errs, err)
	default:
		errs = append(errs, os.WriteFile(p("step"), bytes.Repeat([]byte{byte(step)}, 1<<20), 0o644),
			os.WriteFile(p("names/n"+string(rune('0'+step))), []byte("n"), 0o644))
	}
	if err := errors.Join(errs...); err != nil {
		s.t.Fatal(err)
	}
	if err := s.m.Unmount(name); err != nil {
		s.t.Fatal(err)
	}
}

func (s *store) export(name string, o archive.ExportOptions) []byte {
	s.t.Helper()
	var b bytes.Buffer
	r, err := archive.Export(context.Background(), s.m, name, &b, o)
	if err != nil {
		s.t.Fatal(err)
	}
	if r.Bytes != int64(b.Len()) {
		s.t.Errorf("export reports %d bytes, wrote %d", r.Bytes, b.Len())
	}
	return b.Bytes()
}

func (s *store) snapshot(name, snap string) {
	s.t.Helper()
	if _, err := s.m.CreateSnapshot(context.Background(), name, snap, container.SnapshotOptions{}); err != nil {
		s.t.Fatal(err)
	}
}

func (s *store) importArchive(b []byte, name string) (*archive.Report, error) {
	return archive.Import(context.Background(), s.m, bytes.NewReader(b), archive.ImportOptions{Name: name})
}

// sameContainer fails unless container name of a and of b have the same
// differences, byte for byte and mark for mark, and mount the same tree.
func sameContainer(t *testing.T, a, b *store, name string) {
	t.Helper()
	if err := treecmp.Compare(a.m.UpperDir(name), b.m.UpperDir(name), treecmp.Options{}); err != nil {
		t.Fatalf("upper dirs differ: %v", err)
	}
	ma, err := a.m.Mount(context.Background(), name, "overlay", "")
	if err != nil {
		t.Fatal(err)
	}
	mb, err := b.m.Mount(context.Background(), name, "overlay", "")
	if err != nil {
		t.Fatal(err)
	}
	defer a.m.Unmount(name)
	defer b.m.Unmount(name)
	if err := treecmp.Compare(ma.Mount.Target, mb.Mount.Target, treecmp.Options{}); err != nil {
		t.Fatalf("mounted trees differ: %v", err)
	}
}

// Export and import, on a store that has the template and on an empty one
// (--with-template): the container comes back exactly, with its
// settings and snapshots.
func TestExportImport(t *testing.T) {
	a := newStore(t)
	a.publish()
	if _, err := a.m.Create("c", "crafted", container.WithSettings(container.Settings{Hostname: "box", Memory: 64 << 20})); err != nil {
		t.Fatal(err)
	}
	a.change("c", 0)
	a.snapshot("c", "s1")
	a.change("c", 1)
	plain := a.export("c", archive.ExportOptions{})
	full := a.export("c", archive.ExportOptions{WithTemplate: true})
	t.Logf("archive: %d bytes; with the template: %d bytes", len(plain), len(full))
	if len(plain) > 3<<20/2 {
		t.Errorf("an archive of 1 MB of changes on a store's template takes %d bytes", len(plain))
	}
	names := tarNames(t, plain)
	if names[0] != "index.json" || !slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, "objects/") }) {
		t.Errorf("archive entries: %v", names)
	}

	b := newStore(t)
	b.publish()
	r, err := b.importArchive(plain, "")
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != "c" || r.Snapshots != 1 {
		t.Errorf("import report %+v", r)
	}
	sameContainer(t, a, b, "c")
	ct, err := b.m.Get("c")
	if err != nil || ct.Settings.Hostname != "box" || ct.Settings.Memory != 64<<20 {
		t.Errorf("settings not imported: %+v (%v)", ct, err)
	}
	if err := b.m.RestoreSnapshot(context.Background(), "c", "s1", nil); err != nil {
		t.Fatalf("restore of an imported snapshot: %v", err)
	}
	if _, err := b.importArchive(plain, ""); !errors.Is(err, container.ErrExists) {
		t.Errorf("import over an existing container: %v", err)
	}

	empty := newStore(t)
	if _, err := empty.importArchive(plain, ""); err == nil || !strings.Contains(err.Error(), "--with-template") {
		t.Errorf("import without the template's layers: %v", err)
	}
	if cs, _ := empty.m.List(); len(cs) != 0 {
		t.Errorf("a refused import made %d containers", len(cs))
	}
	if r, err = empty.importArchive(full, "c"); err != nil {
		t.Fatal(err)
	}
	if r.Template != "crafted:latest" {
		t.Errorf("template saved: %q", r.Template)
	}
	sameContainer(t, a, empty, "c")
}

// An incremental chain of 3: a full archive and two --since archives,
// imported in order, give the container back; each carries only what
// changed; out of order they are refused, changing nothing.
func TestIncrementalChain(t *testing.T) {
	a := newStore(t)
	a.publish()
	if _, err := a.m.Create("c", "crafted"); err != nil {
		t.Fatal(err)
	}
	a.change("c", 0)
	a.snapshot("c", "s1")
	full := a.export("c", archive.ExportOptions{})
	a.change("c", 1)
	a.snapshot("c", "s2")
	inc1 := a.export("c", archive.ExportOptions{Since: "s1"})
	a.change("c", 2)
	a.snapshot("c", "s3")
	inc2 := a.export("c", archive.ExportOptions{Since: "s2"})
	t.Logf("full %d bytes, incremental %d and %d bytes", len(full), len(inc1), len(inc2))
	for _, inc := range [][]byte{inc1, inc2} {
		if len(inc) > 3<<20/2 {
			t.Errorf("an incremental archive of a 1 MB change takes %d bytes", len(inc))
		}
	}

	b := newStore(t)
	b.publish()
	if _, err := b.importArchive(inc1, "c"); err == nil {
		t.Error("an incremental archive imported without the one before")
	}
	if _, err := b.importArchive(full, "c"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.importArchive(inc2, "c"); err == nil {
		t.Error("the third archive imported before the second")
	}
	for _, inc := range [][]byte{inc1, inc2} {
		if _, err := b.importArchive(inc, "c"); err != nil {
			t.Fatal(err)
		}
	}
	sameContainer(t, a, b, "c")
	snaps, err := b.m.Snapshots("c")
	if err != nil || len(snaps) != 3 {
		t.Fatalf("snapshots after the chain: %d (%v)", len(snaps), err)
	}
}

// A corrupt or cut archive is refused with ErrBadArchive and changes
// nothing in the store: no container, no object, no layer, no ref.
func TestBadArchive(t *testing.T) {
	a := newStore(t)
	a.publish()
	if _, err := a.m.Create("c", "crafted"); err != nil {
		t.Fatal(err)
	}
	a.change("c", 0)
	a.change("c", 1)
	good := a.export("c", archive.ExportOptions{WithTemplate: true})
	b := newStore(t)
	before := listing(t, b.st)
	flip := func(at int) []byte {
		bad := slices.Clone(good)
		bad[at] ^= 0x55
		return bad
	}
	// Where the 1 MB object of step 1 lies: a byte inside it.
	obj := bytes.Index(good, bytes.Repeat([]byte{1}, 4096))
	cases := map[string][]byte{
		"empty":            nil,
		"not a tar":        []byte(strings.Repeat("garbage ", 200)),
		"cut in the index": good[:700],
		"cut in an object": good[:obj+100],
		"cut at the end":   good[:len(good)-2048],
		"flipped content":  flip(obj + 10),
		"index not first":  retar(t, good, func(names []string) []string { return append(names[1:], names[0]) }),
		"entry missing":    retar(t, good, func(names []string) []string { return names[:len(names)-1] }),
		"extra entry":      retar(t, good, func(names []string) []string { return append(names, "../../etc/passwd") }),
	}
	for name, bad := range cases {
		_, err := b.importArchive(bad, "")
		if err == nil {
			t.Errorf("%s: imported", name)
			continue
		}
		if !errors.Is(err, archive.ErrBadArchive) && name != "flipped content" {
			t.Errorf("%s: %v, want ErrBadArchive", name, err)
		}
		t.Logf("%s: %v", name, err)
		if got := listing(t, b.st); !slices.Equal(got, before) {
			t.Fatalf("%s: the refused import changed the store: %v", name, diffNames(before, got))
		}
	}
	if _, err := b.importArchive(good, ""); err != nil {
		t.Fatalf("the good archive: %v", err)
	}
}

// listing names everything in a store but its tmp/ and lock.
func listing(t *testing.T, st *templates.Store) []string {
	t.Helper()
	root := st.Layers.Root()
	var out []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := p[len(root):]
		if rel == "/tmp" {
			return filepath.SkipDir
		}
		if rel != "/lock" {
			out = append(out, rel)
		}
		return nil
	})
	return out
}

func diffNames(a, b []string) []string {
	var d []string
	for _, n := range b {
		if !slices.Contains(a, n) {
			d = append(d, "+"+n)
		}
	}
	for _, n := range a {
		if !slices.Contains(b, n) {
			d = append(d, "-"+n)
		}
	}
	return d
}

func tarNames(t *testing.T, b []byte) []string {
	t.Helper()
	var names []string
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, hdr.Name)
	}
}

// retar rewrites the archive b with its entries in the order (and with
// the names) order gives; a name not in b is an entry of 1 byte.
func retar(t *testing.T, b []byte, order func([]string) []string) []byte {
	t.Helper()
	content := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(b))
	var names []string
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		c, _ := io.ReadAll(tr)
		content[hdr.Name] = c
		names = append(names, hdr.Name)
	}
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	for _, n := range order(names) {
		c, ok := content[n]
		if !ok {
			c = []byte("x")
		}
		if err := tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(c))}); err != nil {
			t.Fatal(err)
		}
		tw.Write(c)
	}
	tw.Close()
	return out.Bytes()
}

// Settings that reach the host are left out of an import unless trusted:
// an archive whose container binds the host's / and turns seccomp off
// imports with neither, and says so.
func TestImportConfinesSettings(t *testing.T) {
	a := newStore(t)
	a.publish()
	hostile := container.Settings{Seccomp: "unconfined", Network: "host", Publish: []string{"80:80"},
		Mounts: []container.Mount{{Type: container.MountBind, Source: "/", Target: "/host"}, {Type: container.MountTmpfs, Target: "/scratch"}}}
	if _, err := a.m.Create("c", "crafted", container.WithSettings(hostile)); err != nil {
		t.Fatal(err)
	}
	b := a.export("c", archive.ExportOptions{})
	r, err := a.importArchive(b, "confined")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Dropped) != 4 {
		t.Errorf("dropped %q, want the bind mount, seccomp, host network and ports", r.Dropped)
	}
	ct, err := a.m.Get("confined")
	if err != nil {
		t.Fatal(err)
	}
	s := ct.Settings
	if s.Seccomp != "" || s.Network != "" || len(s.Publish) != 0 || len(s.Mounts) != 1 || s.Mounts[0].Type != container.MountTmpfs {
		t.Errorf("imported settings keep what reaches the host: %+v", s)
	}
	r, err = archive.Import(context.Background(), a.m, bytes.NewReader(b), archive.ImportOptions{Name: "trusted", TrustSettings: true})
	if err != nil {
		t.Fatal(err)
	}
	if ct, _ := a.m.Get("trusted"); len(r.Dropped) != 0 || ct.Settings.Seccomp != "unconfined" || len(ct.Settings.Mounts) != 2 {
		t.Errorf("trusted import changed the settings: %+v (dropped %q)", ct.Settings, r.Dropped)
	}
}
