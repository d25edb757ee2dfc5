package registry

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acetate/acetate/internal/treecmp"
	"github.com/acetate/acetate/templates"
	"github.com/acetate/acetate/templates/oci/ocitest"
	"github.com/acetate/acetate/templates/storetest"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// flipped changes one byte in the middle of a response body.
type flipped struct {
	io.ReadCloser
	at, n int64
}

func (f *flipped) Read(b []byte) (int, error) {
	n, err := f.ReadCloser.Read(b)
	if i := f.at - f.n; i >= 0 && i < int64(n) {
		b[i] ^= 0x20
	}
	f.n += int64(n)
	return n, err
}

// tamper changes a byte of every blob of at least min bytes.
func tamper(min int64) func(*http.Request, *http.Response) {
	return func(_ *http.Request, resp *http.Response) {
		if isBlobGet(resp.Request) && resp.StatusCode == http.StatusOK && resp.ContentLength >= min {
			resp.Body = &flipped{ReadCloser: resp.Body, at: resp.ContentLength / 2}
		}
	}
}

func deny(_ *http.Request, resp *http.Response) {
	resp.Body.Close()
	resp.StatusCode, resp.Status = http.StatusUnauthorized, "401 Unauthorized"
	resp.Header = http.Header{"Www-Authenticate": {`Basic realm="test"`}, "Content-Type": {"application/json"}}
	body := `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`
	resp.Body, resp.ContentLength = io.NopCloser(strings.NewReader(body)), int64(len(body))
}

// pushEscape pushes an image whose second layer holds "../../evil".
func pushEscape(t *testing.T, dst string) {
	t.Helper()
	var ls [][]byte
	for _, names := range [][]string{{"etc/ok"}, {"usr/x", "../../evil"}} {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		for _, n := range names {
			tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644, Size: 1})
			tw.Write([]byte("x"))
		}
		tw.Close()
		ls = append(ls, b.Bytes())
	}
	img := empty.Image
	for _, r := range ls {
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(r)), nil })
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			t.Fatal(err)
		}
	}
	ref, err := ParseReference(dst, insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, insecure.remoteOptions(ctx)...); err != nil {
		t.Fatal(err)
	}
}

// A registry that is down, an unknown tag, an auth failure, tampered blobs
// (acetate's packs and a plain image's layers) and a layer escaping with
// "../" give clear errors and leave the store as it was.
func TestPullBadInput(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir()) // no credentials from the host
	t.Setenv("REGISTRY_AUTH_FILE", filepath.Join(t.TempDir(), "none.json"))
	reg := startRegistry(t)
	src := ocitest.NewStore(t)
	appTree(t, src)
	push(t, src, "app:1", reg+"/acetate/app:1")
	pushEscape(t, reg+"/bad/escape:1")
	other := ocitest.NewStore(t)
	if _, err := other.Publish(ctx, templates.MustParseRef("plain:1"), appDir(t, src), templates.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	plainImage(t, other, "plain:1", reg+"/plain/app:1")

	defer func(d time.Duration) { commitEvery = d }(commitEvery)
	commitEvery = time.Hour // no periodic commit before a tampered pack is met
	p := startProxy(t, reg)
	down := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	st := ocitest.NewStore(t)
	publish(t, st, "keep:1", t.TempDir(), "")
	before := ocitest.Listing(t, st)
	cases := []struct {
		name, src string
		change    func(*http.Request, *http.Response)
		want      string
		is        error
	}{
		{"registry down", down + "/acetate/app:1", nil, "connection refused", nil},
		{"unknown tag", p.addr + "/acetate/app:nope", nil, "MANIFEST_UNKNOWN", ErrUnknown},
		{"unknown repository", p.addr + "/nothing/here:1", nil, "not found in the registry", ErrUnknown},
		{"auth failure", p.addr + "/acetate/app:1", deny, "access denied", nil},
		{"tampered config", p.addr + "/acetate/app:1", tamper(0), "checksum", nil},
		{"tampered packs", p.addr + "/acetate/app:1", tamper(BigObject), "checksum", nil},
		{"tampered image layer", p.addr + "/plain/app:1", tamper(BigObject), "checksum", nil},
		{"escape", p.addr + "/bad/escape:1", nil, `".."`, nil},
		{"not a reference", "UPPER/case:1", nil, "image reference", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p.setChange(c.change)
			defer p.setChange(nil)
			_, err := Pull(ctx, st, c.src, templates.MustParseRef("new:1"), insecure)
			if err == nil || !strings.Contains(err.Error(), c.want) || (c.is != nil && !errors.Is(err, c.is)) {
				t.Fatalf("pull %s: error %v, want one containing %s", c.src, err, c.want)
			}
			t.Logf("%s: %v", c.name, err)
			if after := ocitest.Listing(t, st); !slices.Equal(before, after) {
				t.Errorf("the store changed:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
	p.setChange(deny)
	tp, _ := src.Lookup("app:1")
	if _, err := Push(ctx, src, tp, p.addr+"/acetate/app:2", insecure); err == nil || !strings.Contains(err.Error(), "access denied") {
		t.Errorf("push through a registry that denies access: %v", err)
	}
	storetest.FsckClean(t, st)
}

// appDir exports app:1 of st, to publish it elsewhere.
func appDir(t *testing.T, st *templates.Store) string {
	t.Helper()
	tp, err := st.Lookup("app:1")
	if err != nil {
		t.Fatal(err)
	}
	return exportDir(t, st, tp)
}

// plainImage pushes template ref of st as a plain image with no artifact,
// as another tool would.
func plainImage(t *testing.T, st *templates.Store, ref, dst string) {
	t.Helper()
	tp, err := st.Lookup(ref)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "layout")
	if err := ociExport(st, tp, dir); err != nil {
		t.Fatal(err)
	}
	run(t, "skopeo", "copy", "--dest-tls-verify=false", "oci:"+dir+":1", "docker://"+dst)
}

// A pull that stops halfway (the registry loses blobs) keeps the objects it
// fetched: the next pull fetches only the rest, and the template appears
// only then.
func TestPullResumes(t *testing.T) {
	reg := startRegistry(t)
	dir := pushRandom(t, reg, "many:1", 64)

	p := startProxy(t, reg)
	var blobs atomic.Int32
	p.setChange(func(_ *http.Request, resp *http.Response) {
		if isBlobGet(resp.Request) && blobs.Add(1) > 30 {
			resp.Body.Close()
			resp.StatusCode, resp.Status = http.StatusNotFound, "404 Not Found"
			resp.Body, resp.ContentLength = io.NopCloser(strings.NewReader(`{"errors":[{"code":"BLOB_UNKNOWN"}]}`)), -1
		}
	})
	st := ocitest.NewStore(t)
	if _, err := Pull(ctx, st, p.addr+"/acetate/many:1", templates.MustParseRef("many:1"), insecure); err == nil {
		t.Fatal("the interrupted pull succeeded")
	}
	if _, err := st.Lookup("many:1"); !errors.Is(err, templates.ErrNotFound) {
		t.Errorf("after an interrupted pull the template exists (%v)", err)
	}
	storetest.FsckClean(t, st)
	p.setChange(nil)
	before := p.bytes.Load()
	tp := pull(t, st, p.addr+"/acetate/many:1", "many:1")
	resumed := p.bytes.Load() - before
	whole := int64(64 * BigObject)
	t.Logf("the resumed pull fetched %d bytes of %d", resumed, whole)
	if resumed > whole*3/4 {
		t.Errorf("the resumed pull fetched %d bytes, most of the %d of the whole template", resumed, whole)
	}
	if err := treecmp.Compare(dir, exportDir(t, st, tp), treecmp.Options{IgnoreDirMtime: true}); err != nil {
		t.Fatal(err)
	}
	storetest.FsckClean(t, st)
}
