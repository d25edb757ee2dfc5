package templates_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/acetate/acetate/templates"
)

// compressedTarball makes, with the real tools, a tarball of one file whose
// content is incompressible noise around "GOOD-CONTENT", so that gzip -1 and
// zstd -1 store those bytes as they are, in 256 KiB tar records (so the
// decompressor is far from its checksum when the tar reader sees the
// end-of-archive marker), and compresses it with the command given.
func compressedTarball(t *testing.T, content []byte, compress ...string) []byte {
	t.Helper()
	for _, tool := range []string{"tar", compress[0]} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), content, 0o644); err != nil {
		t.Fatal(err)
	}
	tarball := filepath.Join(t.TempDir(), "t.tar")
	if out, err := exec.Command("tar", "-b", "512", "-C", dir, "-cf", tarball, "f").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	out, err := exec.Command(compress[0], append(compress[1:], "-c", tarball)...).Output()
	if err != nil {
		t.Fatalf("%s: %v", compress[0], err)
	}
	return out
}

// A compressed tarball whose content was changed after compression is
// refused by the compressor's own check (gzip's CRC32, zstd's frame
// checksum, bzip2's CRCs), with the store unchanged; the unchanged tarball
// publishes the original content. The attack: "GOOD-CONTENT" replaced by
// "EVIL-CONTENT" in the compressed bytes, where the tar reader, which stops
// at the end-of-archive marker, never reads the checksum.
func TestPublishRefusesTamperedCompressedTarballs(t *testing.T) {
	noise := make([]byte, 8192)
	rand.Read(noise)
	content := append(append(bytes.Clone(noise[:4096]), "GOOD-CONTENT"...), noise[4096:]...)
	cases := map[string][]string{
		"gzip":  {"gzip", "-1", "-n"},
		"zstd":  {"zstd", "-1", "-q"},
		"bzip2": {"bzip2", "-1"},
	}
	for name, tool := range cases {
		t.Run(name, func(t *testing.T) {
			st := newStore(t)
			before := snapshot(t, st.Layers.Root())
			good := compressedTarball(t, content, tool...)
			evil := bytes.Replace(good, []byte("GOOD-CONTENT"), []byte("EVIL-CONTENT"), 1)
			if bytes.Equal(evil, good) { // bzip2 transforms its input: flip a byte instead
				evil[len(evil)/2] ^= 0x01
			}
			_, err := st.Publish(context.Background(), templates.MustParseRef("bad"), writeTemp(t, evil), templates.PublishOptions{})
			if err == nil || !strings.Contains(err.Error(), "corrupt "+name+" stream") {
				t.Fatalf("publish of a tampered %s tarball: error %v, want a corrupt %s stream", name, err, name)
			}
			t.Logf("tampered %s: %v", name, err)
			if after := snapshot(t, st.Layers.Root()); after != before {
				t.Fatalf("store changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			tp := publish(t, st, "good-"+name, writeTemp(t, good), templates.PublishOptions{})
			out := filepath.Join(t.TempDir(), "out")
			export(t, st, tp, out)
			if got, err := os.ReadFile(filepath.Join(out, "f")); err != nil || !bytes.Equal(got, content) {
				t.Fatalf("the untampered %s tarball did not publish its content (%v)", name, err)
			}
		})
	}
}

// A tarball whose compressed stream goes on past the end-of-archive marker
// (a decompression bomb behind a valid tar) is refused once more than
// layers.MaxTarTrailer bytes follow, instead of being drained to its end.
func TestPublishRefusesTrailingData(t *testing.T) {
	tarball := append(tarOf(t, reg("a")), make([]byte, 4<<20)...)
	st := newStore(t)
	before := snapshot(t, st.Layers.Root())
	_, err := st.Publish(context.Background(), templates.MustParseRef("bad"), writeTemp(t, zstdOf(tarball)), templates.PublishOptions{})
	if err == nil || !strings.Contains(err.Error(), "follow the end of the tar stream") {
		t.Fatalf("publish of a tarball with 4 MiB after its end: %v", err)
	}
	if after := snapshot(t, st.Layers.Root()); after != before {
		t.Fatalf("store changed")
	}
	publish(t, st, "padded", writeTemp(t, gzipOf(append(tarOf(t, reg("a")), make([]byte, 9216)...))), templates.PublishOptions{})
}
