package registry

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/acetate/acetate/layers"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Options change how Push and Pull reach the registry.
type Options struct {
	// Insecure allows plain HTTP and unverified TLS (loopback registries).
	Insecure bool
	// Progress receives bytes sent or received.
	Progress layers.Progress
	// StallTimeout is how long a transfer may move fewer than StallBytes
	// before it is abandoned with ErrStalled (0: DefaultStallTimeout).
	StallTimeout time.Duration
	// Traffic, when set, counts the bytes of request and response bodies.
	Traffic *Traffic
}

// Traffic counts what crosses the network to and from a registry: the
// bodies of requests (Sent: blobs and manifests pushed) and of responses
// (Received: blobs and manifests pulled), headers left out.
type Traffic struct {
	Sent, Received atomic.Int64
}

// ErrUnknown is wrapped by errors about an image or tag the registry does
// not have.
var ErrUnknown = errors.New("not found in the registry")

// ParseReference parses REGISTRY/REPO:TAG (or @DIGEST).
func ParseReference(s string, o Options) (name.Reference, error) {
	var opts []name.Option
	if o.Insecure {
		opts = append(opts, name.Insecure)
	}
	r, err := name.ParseReference(s, append(opts, name.StrictValidation)...)
	if err != nil {
		return nil, fmt.Errorf("image reference %q: %w", s, err)
	}
	return r, nil
}

// remoteOptions are the client options every request uses.
func (o Options) remoteOptions(ctx context.Context) []remote.Option {
	t := remote.DefaultTransport.(*http.Transport).Clone()
	if o.Insecure {
		t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // asked for by --insecure
	}
	window := o.StallTimeout
	if window <= 0 {
		window = DefaultStallTimeout
	}
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(authn.DefaultKeychain),
		remote.WithTransport(stallTransport{next: t, window: window, traffic: o.Traffic}),
	}
}

// explain turns a client error into one that says what went wrong.
func explain(what string, err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return fmt.Errorf("%s: cannot reach the registry (is it running, is the address right?): %w", what, err)
	}
	var te *transport.Error
	if errors.As(err, &te) {
		switch te.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("%s: access denied by the registry (credentials come from docker/podman auth files: docker login / podman login): %w", what, err)
		case http.StatusNotFound:
			return fmt.Errorf("%s: %w: %w", what, ErrUnknown, err)
		}
	}
	return fmt.Errorf("%s: %w", what, err)
}
