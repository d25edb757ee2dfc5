package oci_test

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/acetate/acetate/templates"
	"github.com/acetate/acetate/templates/oci"
	"github.com/acetate/acetate/templates/oci/ocitest"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// readJSON and writeBlob edit an image layout by hand, as a hostile one is
// made.
func readJSON(t *testing.T, p string, v any) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err == nil {
		err = json.Unmarshal(b, v)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// writeBlob stores v as a blob of the layout at dir and returns its
// descriptor's digest and size.
func writeBlob(t *testing.T, dir string, v any) (v1.Hash, int64) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	h := v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", sha256.Sum256(b))}
	if err := os.WriteFile(filepath.Join(dir, "blobs", "sha256", h.Hex), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return h, int64(len(b))
}

// lie rewrites the only image of the layout at dir: change edits its
// manifest and config, which are stored again under their new digests with
// the index pointing at them, so that only what change made is wrong.
func lie(t *testing.T, dir string, change func(*v1.Manifest, *v1.ConfigFile)) {
	t.Helper()
	var index v1.IndexManifest
	readJSON(t, filepath.Join(dir, "index.json"), &index)
	var m v1.Manifest
	readJSON(t, filepath.Join(dir, "blobs", "sha256", index.Manifests[0].Digest.Hex), &m)
	var cf v1.ConfigFile
	readJSON(t, filepath.Join(dir, "blobs", "sha256", m.Config.Digest.Hex), &cf)
	configSize := m.Config.Size
	change(&m, &cf)
	declared := m.Config.Size
	m.Config.Digest, m.Config.Size = writeBlob(t, dir, &cf)
	if declared != configSize { // the lie is about the config's size
		m.Config.Size = declared
	}
	index.Manifests[0].Digest, index.Manifests[0].Size = writeBlob(t, dir, &m)
	b, _ := json.Marshal(&index)
	if err := os.WriteFile(filepath.Join(dir, "index.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Image layouts that lie about their blobs are refused as a registry pull
// refuses them, with the store unchanged: layer sizes of 1<<62 and -1, a
// layer one byte shorter than declared, a diff_id that is not the hash of
// the uncompressed layer, a config whose declared size is wrong, and a
// manifest that is not the one the index names. The same layout rewritten
// without a lie imports.
func TestImportRefusesLyingLayouts(t *testing.T) {
	need(t)
	st := ocitest.NewStore(t)
	if _, err := st.Publish(ctx, templates.MustParseRef("keep:1"), t.TempDir(), templates.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	before := ocitest.Listing(t, st)
	img := mustAppend(t, tarLayer(t, "etc/a"), tarLayer(t, "etc/b"))
	cases := []struct {
		name   string
		change func(*v1.Manifest, *v1.ConfigFile)
		want   string
	}{
		{"size 1<<62", func(m *v1.Manifest, _ *v1.ConfigFile) { m.Layers[1].Size = 1 << 62 }, "declares 4611686018427387904"},
		{"size -1", func(m *v1.Manifest, _ *v1.ConfigFile) { m.Layers[1].Size = -1 }, "declares a size of -1"},
		{"size one short", func(m *v1.Manifest, _ *v1.ConfigFile) { m.Layers[0].Size-- }, "longer than its declared"},
		{"wrong diff_id", func(_ *v1.Manifest, cf *v1.ConfigFile) {
			cf.RootFS.DiffIDs[1] = v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}
		}, "the image config's diff_id is sha256:abab"},
		{"config size", func(m *v1.Manifest, _ *v1.ConfigFile) { m.Config.Size = 1 << 62 }, "image config"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := writeLayout(t, img)
			lie(t, dir, c.change)
			src, err := oci.OpenSource("oci:" + dir + ":t")
			if err == nil {
				_, err = oci.Import(ctx, st, templates.MustParseRef("bad:1"), src, nil)
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one saying %q", err, c.want)
			}
			t.Logf("%s: %v", c.name, err)
			if after := ocitest.Listing(t, st); !slices.Equal(before, after) {
				t.Errorf("the store changed:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
	t.Run("manifest changed", func(t *testing.T) {
		dir := writeLayout(t, img)
		var index v1.IndexManifest
		readJSON(t, filepath.Join(dir, "index.json"), &index)
		p := filepath.Join(dir, "blobs", "sha256", index.Manifests[0].Digest.Hex)
		b, err := os.ReadFile(p)
		if err == nil {
			err = os.WriteFile(p, append(b, ' '), 0o644) // still the same JSON
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, err := oci.OpenSource("oci:" + dir + ":t"); err == nil || !strings.Contains(err.Error(), "image manifest") {
			t.Fatalf("a layout whose manifest does not match the index opened: %v", err)
		}
	})
	dir := writeLayout(t, img)
	lie(t, dir, func(*v1.Manifest, *v1.ConfigFile) {})
	src, err := oci.OpenSource("oci:" + dir + ":t")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := oci.Import(ctx, st, templates.MustParseRef("good:1"), src, nil); err != nil {
		t.Fatalf("the layout rewritten without a lie: %v", err)
	}
}
