package volume

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// A volume's life: create (twice is ErrExists), list, find by directory,
// removal refused while used, remove with its data, made again by Ensure;
// what a killed remove left goes with the next remove.
func TestLife(t *testing.T) {
	root := t.TempDir()
	s := Open(root)
	v, err := s.Create("data1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create("data1"); !errors.Is(err, ErrExists) {
		t.Fatalf("second create: %v", err)
	}
	for _, bad := range []string{"../x", "Bad", ".rm-x", ""} {
		if _, err := s.Create(bad); err == nil {
			t.Errorf("create %q: no error", bad)
		}
	}
	os.MkdirAll(filepath.Join(v.Path, "sub"), 0o755)
	os.WriteFile(filepath.Join(v.Path, "sub/f"), []byte("data"), 0o644)
	os.Symlink("/etc", filepath.Join(v.Path, "etc-link"))
	if got := s.NameOf(v.Path); got != "data1" {
		t.Errorf("NameOf %s: %q", v.Path, got)
	}
	if got := s.NameOf(filepath.Join(v.Path, "sub")); got != "" {
		t.Errorf("NameOf of a directory in a volume: %q", got)
	}
	vs, err := s.List()
	if err != nil || len(vs) != 1 || vs[0].Name != "data1" {
		t.Fatalf("list: %v %+v", err, vs)
	}
	if vs[0].Usage(); vs[0].Files != 1 {
		t.Errorf("usage: %+v", vs[0])
	}
	if err := s.Remove("data1", []string{"c1"}); !errors.Is(err, ErrInUse) {
		t.Fatalf("remove of a used volume: %v", err)
	}
	os.MkdirAll(filepath.Join(root, "volumes", removing+"old-1-2", "x"), 0o755)
	if err := s.Remove("data1", nil); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(filepath.Join(root, "volumes")); len(ents) != 0 {
		t.Fatalf("left after remove: %v", ents)
	}
	if _, err := os.Stat("/etc/passwd"); err != nil {
		t.Fatal("the link's target went with the volume")
	}
	if _, err := s.Get("data1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get after remove: %v", err)
	}
	if v, err := s.Ensure("data1"); err != nil || v.Name != "data1" {
		t.Fatalf("ensure: %v", err)
	}
}
