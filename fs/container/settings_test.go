package container_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/acetate/acetate/fs/container"
)

// Settings given at create are kept, changed whole by Configure (nothing
// written when the change fails), copied by clone; a container made before
// settings existed reads as the zero Settings; a newer version is refused.
func TestSettings(t *testing.T) {
	e := newEnv(t)
	e.publish("t", writeTree(t, map[string]string{"etc/hostname": "builder\n"}))
	want := container.Settings{Args: []string{"sleep", "1"}, Env: []string{"A=1"}, Hostname: "h", Memory: 64 << 20, Pids: 50}
	if _, err := e.m.Create("c", "t", container.WithSettings(want)); err != nil {
		t.Fatal(err)
	}
	want.Version = container.SettingsVersion
	get := func(name string) container.Settings {
		c, err := e.m.Get(name)
		if err != nil {
			t.Fatal(err)
		}
		return c.Settings
	}
	if got := get("c"); !reflect.DeepEqual(got, want) {
		t.Errorf("after create: %+v, want %+v", got, want)
	}
	refuse := errors.New("refused")
	if _, err := e.m.Configure("c", func(s *container.Settings) error { s.Memory = 1; return refuse }); !errors.Is(err, refuse) {
		t.Errorf("a failing change: %v, want it returned", err)
	}
	if _, err := e.m.Configure("c", func(s *container.Settings) error { s.CPUs = 0.5; return nil }); err != nil {
		t.Fatal(err)
	}
	want.CPUs = 0.5
	if got := get("c"); !reflect.DeepEqual(got, want) {
		t.Errorf("after configure: %+v, want %+v", got, want)
	}
	if _, err := e.m.Clone("c", "c2"); err != nil {
		t.Fatal(err)
	}
	if got := get("c2"); !reflect.DeepEqual(got, want) {
		t.Errorf("clone: %+v, want %+v", got, want)
	}
	e.create("old", "t")
	if got := get("old"); !reflect.DeepEqual(got, container.Settings{}) {
		t.Errorf("a container created without settings: %+v, want none", got)
	}
	if _, err := e.m.Configure("nosuch", func(*container.Settings) error { return nil }); !errors.Is(err, container.ErrNotFound) {
		t.Errorf("configure of a missing container: %v, want ErrNotFound", err)
	}
	// A newer acetate's record is not rewritten without its new fields.
	path := filepath.Join(e.st.Layers.Root(), "containers", "c", "config.json")
	var rec map[string]any
	b, _ := os.ReadFile(path)
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	rec["settings"].(map[string]any)["version"] = container.SettingsVersion + 1
	b, _ = json.Marshal(rec)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Configure("c", func(*container.Settings) error { return nil }); err == nil {
		t.Error("configure of a newer settings version: no error")
	}
}

// A mount without a driver named uses the container's driver setting
// (create --driver), as a start does; one named wins for that mount.
func TestMountDriverSetting(t *testing.T) {
	e := newEnv(t)
	e.publish("t", writeTree(t, map[string]string{"etc/hostname": "builder\n"}))
	if _, err := e.m.Create("c", "t", container.WithSettings(container.Settings{Driver: "fuse"})); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ asked, want string }{{"", "fuse"}, {"overlay", "overlay"}} {
		c, err := e.m.Mount(context.Background(), "c", tc.asked, "")
		if err != nil {
			t.Fatal(err)
		}
		if c.Mount.Driver != tc.want {
			t.Errorf("mount asking for %q: driver %s, want %s", tc.asked, c.Mount.Driver, tc.want)
		}
		e.unmount("c")
	}
}
