package registry

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/acetate/acetate/templates"
	"github.com/acetate/acetate/templates/oci"
	"github.com/acetate/acetate/templates/oci/ocitest"
	"github.com/acetate/acetate/templates/registry/registrytest"
)

var ctx = context.Background()

// insecure is how every test reaches its loopback registry.
var insecure = Options{Insecure: true}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startRegistry runs Debian's docker-registry (see registrytest.Start)
// and returns its host:port.
func startRegistry(t *testing.T) string {
	t.Helper()
	return registrytest.Start(t)
}

// proxy stands in front of a registry, counts the bytes of the response
// bodies it passes, and can change responses.
type proxy struct {
	addr  string
	bytes atomic.Int64 // received by clients
	sent  atomic.Int64 // sent by clients
	// change, when set, may replace a response before it is passed on.
	change atomic.Pointer[func(*http.Request, *http.Response)]
}

func startProxy(t *testing.T, registry string) *proxy {
	t.Helper()
	p := &proxy{}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: registry})
	rp.ModifyResponse = func(resp *http.Response) error {
		if f := p.change.Load(); f != nil {
			(*f)(resp.Request, resp)
		}
		resp.Body = &countingBody{ReadCloser: resp.Body, n: &p.bytes}
		return nil
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = &countingBody{ReadCloser: r.Body, n: &p.sent}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.addr = strings.TrimPrefix(srv.URL, "http://")
	return p
}

// setChange installs f (nil to pass responses unchanged).
func (p *proxy) setChange(f func(*http.Request, *http.Response)) {
	if f == nil {
		p.change.Store(nil)
		return
	}
	p.change.Store(&f)
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c *countingBody) Read(b []byte) (int, error) {
	n, err := c.ReadCloser.Read(b)
	c.n.Add(int64(n))
	return n, err
}

// isBlobGet reports whether r fetches a blob.
func isBlobGet(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:")
}

func publish(t *testing.T, st *templates.Store, ref, src string, base string) *templates.Template {
	t.Helper()
	opts := templates.PublishOptions{}
	if base != "" {
		b := templates.MustParseRef(base)
		opts.Base = &b
	}
	tp, err := st.Publish(ctx, templates.MustParseRef(ref), src, opts)
	if err != nil {
		t.Fatalf("publish %s: %v", ref, err)
	}
	return tp
}

func push(t *testing.T, st *templates.Store, ref, dst string) {
	t.Helper()
	tp, err := st.Lookup(ref)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Push(ctx, st, tp, dst, insecure); err != nil {
		t.Fatalf("push %s to %s: %v", ref, dst, err)
	}
}

func pull(t *testing.T, st *templates.Store, src, ref string) *templates.Template {
	t.Helper()
	tp, err := Pull(ctx, st, src, templates.MustParseRef(ref), insecure)
	if err != nil {
		t.Fatalf("pull %s: %v", src, err)
	}
	return tp
}

// exportDir exports tp to a new directory and returns it.
func exportDir(t *testing.T, st *templates.Store, tp *templates.Template) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "export")
	if err := st.Export(ctx, tp, out, nil); err != nil {
		t.Fatal(err)
	}
	return out
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s is not installed", name)
	}
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// ociExport writes tp into an image layout at dir, ref name "1".
func ociExport(st *templates.Store, tp *templates.Template, dir string) error {
	return oci.ExportLayout(ctx, st, tp, dir, "1", nil)
}

// pushRandom publishes a tree of n files of random content, each of at
// least BigObject bytes so that each travels in a pack of its own, as
// template ref (NAME:1) of a new store, pushes it to reg/acetate/NAME:1,
// and returns the tree.
func pushRandom(t *testing.T, reg, ref string, n int) string {
	t.Helper()
	src := ocitest.NewStore(t)
	dir := filepath.Join(t.TempDir(), "tree")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%02d", i)), random(BigObject+i), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	publish(t, src, ref, dir, "")
	push(t, src, ref, reg+"/acetate/"+ref)
	return dir
}
