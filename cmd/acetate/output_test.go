package main

import (
	"bytes"
	"testing"
)

// render writes [] for every empty list it reaches, wherever it is, and
// leaves the value's other fields, and byte slices, as they are.
func TestRenderEmptyLists(t *testing.T) {
	type inner struct {
		Names []string `json:"names"`
		Raw   []byte   `json:"raw"`
	}
	type outer struct {
		List    []int            `json:"list"`
		Ptr     *inner           `json:"ptr"`
		Nested  []inner          `json:"nested"`
		ByName  map[string][]int `json:"byName"`
		Any     any              `json:"any"`
		Omitted []string         `json:"omitted,omitempty"`
		//lint:ignore U1000 an unexported field, which the JSON encoder skips: the case checks render does too
		private []string
	}
	for _, c := range []struct {
		v    any
		want string
	}{
		{[]string(nil), "[]\n"},
		{(*inner)(nil), "null\n"},
		{nil, "null\n"},
		{outer{Ptr: &inner{}, Nested: []inner{{Names: []string{"a"}}}, ByName: map[string][]int{"x": nil}, Any: []string(nil)},
			`{"list":[],"ptr":{"names":[],"raw":null},"nested":[{"names":["a"],"raw":null}],"byName":{"x":[]},"any":[]}` + "\n"},
	} {
		var out bytes.Buffer
		a := &app{format: "json", stdout: &out}
		if err := a.render(c.v, table{}); err != nil {
			t.Fatal(err)
		}
		if got := string(bytes.Join(bytes.Fields(out.Bytes()), nil)) + "\n"; got != c.want {
			t.Errorf("render(%#v) = %s, want %s", c.v, got, c.want)
		}
	}
}
