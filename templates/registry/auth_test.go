package registry

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/acetate/acetate/templates/oci/ocitest"
)

// requireBasic makes the proxy answer 401 to every request without the
// credentials user:pass, as a registry with htpasswd auth does.
func requireBasic(p *proxy, user, pass string) {
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	p.setChange(func(r *http.Request, resp *http.Response) {
		if r.Header.Get("Authorization") != want {
			deny(r, resp)
		}
	})
}

func writeAuthFile(t *testing.T, path, registry, user, pass string) {
	t.Helper()
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, registry, auth)), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Credentials come from docker's config.json and from podman's auth.json
// (REGISTRY_AUTH_FILE); wrong ones are refused with a clear error.
func TestCredentialsFromAuthFiles(t *testing.T) {
	reg := startRegistry(t)
	p := startProxy(t, reg)
	requireBasic(p, "alice", "s3cret")
	st := ocitest.NewStore(t)
	appTree(t, st)

	docker := t.TempDir()
	t.Setenv("DOCKER_CONFIG", docker)
	t.Setenv("REGISTRY_AUTH_FILE", filepath.Join(t.TempDir(), "none.json"))
	writeAuthFile(t, filepath.Join(docker, "config.json"), p.addr, "alice", "wrong")
	tp, _ := st.Lookup("app:1")
	if _, err := Push(ctx, st, tp, p.addr+"/acetate/app:1", insecure); err == nil || !strings.Contains(err.Error(), "access denied") {
		t.Fatalf("push with a wrong password: %v", err)
	}
	writeAuthFile(t, filepath.Join(docker, "config.json"), p.addr, "alice", "s3cret")
	push(t, st, "app:1", p.addr+"/acetate/app:1")

	t.Setenv("DOCKER_CONFIG", t.TempDir())
	podman := filepath.Join(t.TempDir(), "auth.json")
	writeAuthFile(t, podman, p.addr, "alice", "s3cret")
	t.Setenv("REGISTRY_AUTH_FILE", podman)
	pull(t, ocitest.NewStore(t), p.addr+"/acetate/app:1", "app:1")
}
