package registry

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/acetate/acetate/layers/layerstest"
	"github.com/acetate/acetate/templates"
	"github.com/acetate/acetate/templates/oci/ocitest"
	"github.com/opencontainers/go-digest"
)

// randomTree writes n files of size bytes of random content under a new
// directory.
func randomTree(t *testing.T, n, size int) string {
	t.Helper()
	dir := t.TempDir()
	buf := make([]byte, size)
	for i := range n {
		for j := range buf {
			buf[j] = byte(rand.Uint32())
		}
		if err := os.WriteFile(filepath.Join(dir, "f"+string(rune('a'+i))), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// stackLayer reads dir into st as one layer and returns its digest.
func stackLayer(t *testing.T, st *templates.Store, dir string) digest.Digest {
	t.Helper()
	d, err := layerstest.CommitDir(st.Layers, dir)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// A stack (a container's layer on a template) travels with its template
// only where the registry or the puller lacks it: the second push of a
// stack on the same template sends only the new layer's content, a pull
// into a store that has the template receives only that, and a pull into
// an empty store brings the template too.
func TestStackPushPull(t *testing.T) {
	reg := startRegistry(t)
	px := startProxy(t, reg)
	src := randomTree(t, 4, 2<<20)
	a := ocitest.NewStore(t)
	base := publish(t, a, "base:1", src, "")
	push1 := Stack{Template: base, Layers: []digest.Digest{stackLayer(t, a, randomTree(t, 1, 1<<20))}, Payload: json.RawMessage(`{"n":1}`)}
	if _, err := PushStack(ctx, a, push1, px.addr+"/box:1", insecure); err != nil {
		t.Fatal(err)
	}
	first := px.sent.Load()
	change := randomTree(t, 5, 1<<20)
	push2 := Stack{Template: base, Layers: []digest.Digest{stackLayer(t, a, change)}, Payload: json.RawMessage(`{"n":2}`)}
	if _, err := PushStack(ctx, a, push2, px.addr+"/box:2", insecure); err != nil {
		t.Fatal(err)
	}
	second := px.sent.Load() - first
	t.Logf("first push (template and 1 MB) sent %d bytes, second (5 MB on the same template) %d", first, second)
	if first < 8<<20 || second > 6<<20 {
		t.Errorf("pushes sent %d and %d bytes: want the 8 MB template once, then about 5 MB", first, second)
	}

	b := ocitest.NewStore(t)
	publish(t, b, "base:1", src, "")
	before := px.bytes.Load()
	got, err := PullStack(ctx, b, px.addr+"/box:2", insecure)
	if err != nil {
		t.Fatal(err)
	}
	received := px.bytes.Load() - before
	t.Logf("pull of 5 MB on a template the store has: %d bytes", received)
	if received > 6<<20 {
		t.Errorf("pull received %d bytes for a 5 MB change", received)
	}
	if got.Template.Ref.String() != "base:1" || string(got.Payload) != `{"n":2}` || len(got.Layers) != 1 || got.Layers[0] != push2.Layers[0] {
		t.Errorf("pulled %+v", got)
	}

	c := ocitest.NewStore(t)
	got, err = PullStack(ctx, c, px.addr+"/box:2", insecure)
	if err != nil {
		t.Fatal(err)
	}
	if tp, err := c.Get(templates.MustParseRef("base:1")); err != nil || got.Template.Ref != tp.Ref {
		t.Errorf("pull into an empty store: template %v (%v)", got.Template, err)
	}
	if _, err := PullStack(ctx, c, px.addr+"/base:1", insecure); err == nil {
		t.Error("a template's image pulled as a container")
	}
}
