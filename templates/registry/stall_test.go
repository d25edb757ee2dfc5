package registry

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/acetate/acetate/templates"
	"github.com/acetate/acetate/templates/oci/ocitest"
	"github.com/acetate/acetate/templates/storetest"
)

// endless is a body that never ends: zeros after the real blob.
type endless struct{}

func (endless) Read(b []byte) (int, error) {
	clear(b)
	return len(b), nil
}

// trickle passes a body on one byte a second until the request is gone.
type trickle struct {
	io.ReadCloser
	req *http.Request
}

func (t *trickle) Read(b []byte) (int, error) {
	select {
	case <-t.req.Context().Done():
		return 0, t.req.Context().Err()
	case <-time.After(time.Second):
	}
	return t.ReadCloser.Read(b[:1])
}

// onPacks applies f to the responses carrying pack blobs (every blob of
// BigObject bytes or more in this test's template).
func onPacks(f func(*http.Response)) func(*http.Request, *http.Response) {
	return func(_ *http.Request, resp *http.Response) {
		if isBlobGet(resp.Request) && resp.StatusCode == http.StatusOK && resp.ContentLength >= BigObject {
			f(resp)
		}
	}
}

// A registry that sends a pack blob without end (more than the size the
// layer blob declares), one that trickles it at 1 byte/s, and one that never
// answers a blob request: each pull ends in a clear error within its stated
// limit (at once past the declared size; two stall timeouts otherwise), no
// template appears and the store stays consistent.
func TestPullEndsEndlessAndStalledBlobs(t *testing.T) {
	reg := startRegistry(t)
	pushRandom(t, reg, "big:1", 4)
	p := startProxy(t, reg)
	const stall = 2 * time.Second
	cases := []struct {
		name   string
		change func(*http.Response)
		want   string
		is     error
		within time.Duration
	}{
		{"endless", func(resp *http.Response) {
			resp.Body = struct {
				io.Reader
				io.Closer
			}{io.MultiReader(resp.Body, endless{}), resp.Body}
			resp.ContentLength = -1
			resp.Header.Del("Content-Length")
		}, "longer than its declared", nil, stall},
		{"trickle", func(resp *http.Response) {
			resp.Body = &trickle{ReadCloser: resp.Body, req: resp.Request}
			resp.ContentLength = -1 // the proxy then passes on each byte at once
			resp.Header.Del("Content-Length")
		}, "registry transfer stalled", ErrStalled, 2*stall + time.Second},
		{"silent", func(resp *http.Response) {
			<-resp.Request.Context().Done()
		}, "registry transfer stalled", ErrStalled, 2*stall + time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p.setChange(onPacks(c.change))
			defer p.setChange(nil)
			st := ocitest.NewStore(t)
			start := time.Now()
			_, err := Pull(ctx, st, p.addr+"/acetate/big:1", templates.MustParseRef("big:1"), Options{Insecure: true, StallTimeout: stall})
			took := time.Since(start)
			t.Logf("%s: after %v: %v", c.name, took.Round(time.Millisecond), err)
			if err == nil || !strings.Contains(err.Error(), c.want) || (c.is != nil && !errors.Is(err, c.is)) {
				t.Fatalf("error %v, want one saying %q", err, c.want)
			}
			if took > c.within {
				t.Errorf("the pull took %v, more than the %v it may", took, c.within)
			}
			if _, err := st.Lookup("big:1"); !errors.Is(err, templates.ErrNotFound) {
				t.Errorf("a template was made (%v)", err)
			}
			storetest.FsckClean(t, st)
		})
	}
}
