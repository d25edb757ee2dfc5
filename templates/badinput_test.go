package templates_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/acetate/acetate/templates"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// tarOf builds a tar stream from headers; regular files get content "x".
func tarOf(t *testing.T, hdrs ...*tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hdrs {
		if h.Typeflag == tar.TypeReg && h.Size == 0 {
			h.Size = 1
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write(bytes.Repeat([]byte("x"), int(h.Size)))
		}
	}
	tw.Close()
	return buf.Bytes()
}

func reg(name string) *tar.Header { return &tar.Header{Name: name, Typeflag: tar.TypeReg} }

// snapshot lists every file in the store with its size and mtime, to show
// that a failed operation changed nothing.
func snapshot(t *testing.T, root string) string {
	t.Helper()
	var b strings.Builder
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, _ := d.Info()
		b.WriteString(p + " " + fi.Mode().String())
		if !d.IsDir() {
			b.WriteString(" " + fi.ModTime().String())
		}
		b.WriteString("\n")
		return nil
	})
	return b.String()
}

func gzipOf(p []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(p)
	w.Close()
	return buf.Bytes()
}

func zstdOf(p []byte) []byte {
	w, _ := zstd.NewWriter(nil)
	return w.EncodeAll(p, nil)
}

func corrupt(p []byte) []byte {
	q := bytes.Clone(p)
	for i := len(q) / 3; i < len(q)/3+16 && i < len(q); i++ {
		q[i] ^= 0x5a
	}
	return q
}

// Each malformed or hostile source is refused with one error naming the
// problem, and the store is exactly as before; nothing lands outside it.
func TestPublishRefusesBadTarballs(t *testing.T) {
	big := &tar.Header{Name: "big", Typeflag: tar.TypeReg, Size: 64 << 10}
	good := tarOf(t, reg("a"), big, reg("b"))
	cases := map[string]struct {
		tar  []byte
		want string
	}{
		"dotdot":                {tarOf(t, reg("ok"), reg("../escape-acetate-test")), `".."`},
		"dotdot inside":         {tarOf(t, reg("a/../../escape-acetate-test")), `".."`},
		"absolute":              {tarOf(t, reg("/escape-acetate-test")), "absolute path"},
		"through symlink":       {tarOf(t, &tar.Header{Name: "link", Typeflag: tar.TypeSymlink, Linkname: "/tmp"}, reg("link/escape-acetate-test")), `symlink "/link"`},
		"through file":          {tarOf(t, reg("f"), reg("f/g")), "not a directory"},
		"hardlink outside":      {tarOf(t, &tar.Header{Name: "h", Typeflag: tar.TypeLink, Linkname: "../../etc/passwd"}), "hardlink target"},
		"hardlink missing":      {tarOf(t, &tar.Header{Name: "h", Typeflag: tar.TypeLink, Linkname: "nope"}), "not earlier in the archive"},
		"hardlink to dir":       {tarOf(t, &tar.Header{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o755}, &tar.Header{Name: "h", Typeflag: tar.TypeLink, Linkname: "d"}), "which is a dir"},
		"duplicate":             {tarOf(t, reg("a"), reg("b"), reg("a")), "duplicate entry"},
		"unknown type":          {tarOf(t, &tar.Header{Name: "x", Typeflag: 'Z'}), "unsupported tar entry type"},
		"truncated":             {good[:len(good)-2048-512-100], "truncated"},
		"truncated in content":  {good[:700], "truncated"},
		"truncated at entry":    {good[:1024], "truncated"},
		"corrupt gzip":          {corrupt(gzipOf(good)), "corrupt"},
		"corrupt zstd":          {corrupt(zstdOf(good)), ""},
		"garbage":               {bytes.Repeat([]byte("not a tarball "), 100), "corrupt"},
		"empty":                 {nil, "empty tar stream"},
		"file then dir below":   {tarOf(t, reg("a/b"), reg("a")), "earlier entries lie below it"},
		"symlink empty target ": {tarOf(t, &tar.Header{Name: "l", Typeflag: tar.TypeSymlink}), "empty target"},
	}
	st := newStore(t)
	publish(t, st, "base", writeTemp(t, good), templates.PublishOptions{})
	before := snapshot(t, st.Layers.Root())
	cwd, _ := os.Getwd()
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := st.Publish(context.Background(), templates.MustParseRef("bad"), writeTemp(t, c.tar), templates.PublishOptions{})
			if err == nil {
				t.Fatal("publish succeeded")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not mention %q", err, c.want)
			}
			if after := snapshot(t, st.Layers.Root()); after != before {
				t.Fatalf("store changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			for _, dir := range []string{cwd, filepath.Dir(st.Layers.Root()), "/", "/tmp"} {
				if _, err := os.Lstat(filepath.Join(dir, "escape-acetate-test")); err == nil {
					t.Fatalf("an entry was written outside the store, in %s", dir)
				}
			}
		})
	}
}

func writeTemp(t *testing.T, p []byte) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "src.tar")
	if err := os.WriteFile(f, p, 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// Bad names, missing sources and missing templates get clear errors.
func TestPublishRefusesBadArguments(t *testing.T) {
	for _, name := range []string{"a/b", "has space", "UPPER", "", "a:", "a:b:c", "-x", strings.Repeat("a", 129)} {
		if _, err := templates.ParseRef(name); err == nil {
			t.Errorf("ParseRef(%q) accepted a bad name", name)
		}
	}
	st := newStore(t)
	before := snapshot(t, st.Layers.Root())
	_, err := st.Publish(context.Background(), templates.MustParseRef("x"), "/no/such/source", templates.PublishOptions{})
	if err == nil || !strings.Contains(err.Error(), "/no/such/source") {
		t.Fatalf("missing source: %v", err)
	}
	base := templates.MustParseRef("no-such-base")
	_, err = st.Publish(context.Background(), templates.MustParseRef("x"), t.TempDir(), templates.PublishOptions{Base: &base})
	if !errors.Is(err, templates.ErrNotFound) || !strings.Contains(err.Error(), "no-such-base") {
		t.Fatalf("missing base: %v", err)
	}
	if _, err := st.Lookup("nope:1"); !errors.Is(err, templates.ErrNotFound) {
		t.Fatalf("lookup of a missing template: %v", err)
	}
	if after := snapshot(t, st.Layers.Root()); after != before {
		t.Fatalf("store changed")
	}
}
