package runtime

import "testing"

func TestMergeEnv(t *testing.T) {
	got := MergeEnv([]string{"A=1", "PATH=/bin", "B=2"}, []string{"PATH=/x", "C=3", "A="})
	want := []string{"A=", "PATH=/x", "B=2", "C=3"}
	if len(got) != len(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
}
