package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// export --oci writes a layout that template import reads back into the
// same template; push, pull and import refuse bad arguments with exit code 2.
func TestOCICommands(t *testing.T) {
	root := t.TempDir()
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "hello"), []byte("hi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ok(t, run(t, root, nil, "template", "publish", "hello:1", "--from", src, "--cmd", "/hello"))
	layout := filepath.Join(t.TempDir(), "layout")
	ok(t, run(t, root, nil, "template", "export", "hello:1", "--oci", layout+":v1"))
	ok(t, run(t, root, nil, "template", "import", "oci:"+layout+":v1", "again:1"))
	var got []struct {
		Name   string   `json:"name"`
		Layers []string `json:"layers"`
		Config struct {
			Cmd []string `json:"cmd"`
		} `json:"config"`
	}
	if err := json.Unmarshal([]byte(ok(t, run(t, root, nil, "template", "ls", "--format", "json")).stdout), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Layers[0] != got[1].Layers[0] || strings.Join(got[0].Config.Cmd, " ") != "/hello" {
		t.Errorf("after export --oci and import: %+v, want the same layer and command twice", got)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"template", "export", "hello:1", "--oci", layout, "--to", "x"}, "give one of"},
		{[]string{"template", "import", "tar:x", "a:1"}, "use oci:DIR"},
		{[]string{"template", "import", "oci:" + t.TempDir(), "a:1"}, "not an OCI image layout"},
		{[]string{"pull", "Bad Ref"}, "image reference"},
		{[]string{"pull", "127.0.0.1:1/x:1", "Bad:1"}, "invalid template name"},
		{[]string{"push", "hello:1", "127.0.0.1:1/x@sha256:nope"}, "image reference"},
		{[]string{"pull"}, "accepts 1 or 2 arguments"},
	} {
		r := run(t, root, nil, c.args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, c.want) {
			t.Errorf("acetate %s: exit %d, %q; want %d and %q", strings.Join(c.args, " "), r.code, r.stderr, exitUsage, c.want)
		}
	}
	r := run(t, root, nil, "pull", "127.0.0.1:1/x:1", "--insecure")
	if r.code != exitFailure || !strings.Contains(r.stderr, "cannot reach the registry") {
		t.Errorf("pull from a registry that is down: exit %d, %q", r.code, r.stderr)
	}
}
