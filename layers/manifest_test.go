package layers

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/opencontainers/go-digest"
)

// A decoded manifest round-trips, and its entries hold nothing of the
// encoded bytes: an xattr value pointing into them kept the whole encoded
// manifest alive as long as the entry (the FUSE server keeps entries for
// as long as a template is mounted).
func TestDecodeManifestCopies(t *testing.T) {
	m := &Manifest{Entries: []Entry{
		{Path: "/", Type: TypeDir, Mode: 0o755},
		{Path: "/ping", Type: TypeReg, Mode: 0o755, Digest: digest.FromString("ping"), Size: 4, Xattrs: []Xattr{{Name: "security.capability", Value: []byte{1, 0, 0, 2, 0, 32}}}},
	}}
	raw := m.Encode()
	got, err := DecodeManifest(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, m) {
		t.Fatalf("decoded %+v, want %+v", got, m)
	}
	for i := range raw {
		raw[i] = 0xff
	}
	if v := got.Entries[1].Xattrs[0].Value; !bytes.Equal(v, []byte{1, 0, 0, 2, 0, 32}) {
		t.Errorf("xattr value %v after the encoded bytes changed: it points into them", v)
	}
}
