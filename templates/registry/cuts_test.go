package registry

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/acetate/acetate/layers"
	"github.com/opencontainers/go-digest"
)

// syntheticLayer is a manifest of n files in 20 directories with made-up
// digests and sizes (a tenth of them big), plus extra files.
func syntheticLayer(n int, extra ...string) *layers.Manifest {
	r := rand.New(rand.NewPCG(1, 2))
	m := &layers.Manifest{Entries: []layers.Entry{{Path: "/", Type: layers.TypeDir, Mode: 0o755}}}
	file := func(p string) layers.Entry {
		size := int64(r.IntN(BigObject))
		if r.IntN(10) == 0 {
			size += BigObject
		}
		return layers.Entry{Path: p, Type: layers.TypeReg, Mode: 0o644, Size: size, Digest: digest.FromString(p)}
	}
	for d := range 20 {
		m.Entries = append(m.Entries, layers.Entry{Path: fmt.Sprintf("/d%02d", d), Type: layers.TypeDir, Mode: 0o755})
		for f := range n / 20 {
			m.Entries = append(m.Entries, file(fmt.Sprintf("/d%02d/f%04d", d, f)))
		}
	}
	for _, p := range extra {
		m.Entries = append(m.Entries, file(p))
	}
	m.Sort()
	return m
}

// changed counts the items of b that a lacks.
func changed[T comparable](a, b []T) int {
	have := map[T]bool{}
	for _, x := range a {
		have[x] = true
	}
	n := 0
	for _, x := range b {
		if !have[x] {
			n++
		}
	}
	return n
}

// Adding three files to a layer of 4000 changes only the packs and manifest
// chunks around them: the cuts depend on nearby objects and paths only.
func TestCutsAreLocal(t *testing.T) {
	before := syntheticLayer(4000)
	after := syntheticLayer(4000, "/d03/new", "/d11/f0100x", "/d19/zzz")
	packKeys := func(m *layers.Manifest) []string {
		var keys []string
		for _, p := range partition(m) {
			keys = append(keys, fmt.Sprint(p))
		}
		return keys
	}
	chunkKeys := func(m *layers.Manifest) []digest.Digest {
		cs, err := chunkEntries(m.Entries)
		if err != nil {
			t.Fatal(err)
		}
		var keys []digest.Digest
		for _, c := range cs {
			keys = append(keys, c.digest)
		}
		return keys
	}
	pb, pa := packKeys(before), packKeys(after)
	cb, ca := chunkKeys(before), chunkKeys(after)
	t.Logf("%d packs and %d chunks before; %d packs and %d chunks new after adding 3 files", len(pb), len(cb), changed(pb, pa), changed(cb, ca))
	if n := changed(pb, pa); n > 6 {
		t.Errorf("%d packs changed for 3 new files", n)
	}
	if n := changed(cb, ca); n > 3 {
		t.Errorf("%d manifest chunks changed for 3 new files", n)
	}
	m, err := assemble(payloads(t, after), len(after.Entries), digest.FromBytes(after.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Entries) != len(after.Entries) {
		t.Errorf("assembled %d entries, want %d", len(m.Entries), len(after.Entries))
	}
}

func payloads(t *testing.T, m *layers.Manifest) [][]byte {
	t.Helper()
	cs, err := chunkEntries(m.Entries)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, c := range cs {
		out = append(out, c.payload)
	}
	return out
}
