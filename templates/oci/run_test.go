package oci_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/acetate/acetate/internal/testtree"
	"github.com/acetate/acetate/runtime"
	"github.com/acetate/acetate/templates"
	"github.com/acetate/acetate/templates/oci"
	"github.com/acetate/acetate/templates/oci/ocitest"
)

func TestMain(m *testing.M) {
	runtime.InitMain()
	os.Exit(m.Run())
}

// A Debian image that skopeo copies into an OCI layout is imported, keeps
// its command and environment, and runs in a container.
func TestImportedImageRuns(t *testing.T) {
	need(t, "skopeo")
	rootfs := testtree.DebianRootfs(t)
	st := ocitest.NewStore(t)
	tp, err := st.Publish(ctx, templates.MustParseRef("debian:12"), rootfs, templates.PublishOptions{
		Config: templates.Config{Cmd: []string{"/bin/sh", "-c", "echo $GREETING from Debian $(cat /etc/debian_version)"}, Env: []string{"GREETING=hello"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ours := filepath.Join(t.TempDir(), "ours")
	if err := oci.ExportLayout(ctx, st, tp, ours, "12", nil); err != nil {
		t.Fatal(err)
	}
	theirs := filepath.Join(t.TempDir(), "theirs")
	run(t, "skopeo", "copy", "oci:"+ours+":12", "oci:"+theirs+":bookworm")
	img, err := oci.OpenSource("oci:" + theirs + ":bookworm")
	if err != nil {
		t.Fatal(err)
	}
	other := ocitest.NewStore(t)
	got, err := oci.Import(ctx, other, templates.MustParseRef("debian:bookworm"), img, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "root")
	if err := other.Export(ctx, got, dir, nil); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	code, err := runtime.Run(ctx, runtime.Spec{Rootfs: dir, Args: got.Config.Cmd, Env: got.Config.Env, Stdout: &out, Stderr: &out})
	if err != nil || code != 0 {
		t.Fatalf("run %v: exit %d, %v\n%s", got.Config.Cmd, code, err, out.String())
	}
	if !strings.HasPrefix(out.String(), "hello from Debian 12") {
		t.Errorf("the container printed %q", out.String())
	}
}
