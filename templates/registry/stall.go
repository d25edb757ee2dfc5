package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"
)

// DefaultStallTimeout is how long a registry transfer may go without moving
// StallBytes before it is abandoned, unless Options.StallTimeout says
// otherwise.
const DefaultStallTimeout = 30 * time.Second

// StallBytes is the least a transfer must move (sent or received, headers
// included) in every stall timeout: a registry that answers nothing, or
// trickles a blob at a few bytes a second, ends in ErrStalled.
const StallBytes = 1024

// ErrStalled is wrapped by the error of a transfer abandoned for moving
// fewer than StallBytes in a stall timeout.
var ErrStalled = errors.New("registry transfer stalled")

// stallTransport ends every request that stalls: a watchdog cancels it when
// a window passes in which its request and response bodies moved fewer than
// StallBytes (the wait for the response headers counts as no progress).
type stallTransport struct {
	next    http.RoundTripper
	window  time.Duration
	traffic *Traffic // nil: not counted
}

// RoundTrip sends req under a watchdog that lives until the response body
// is closed or read to its end.
func (s stallTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancelCause(req.Context())
	w := &watchdog{cancel: cancel, done: make(chan struct{}), window: s.window}
	req = req.Clone(ctx)
	var sent, received *atomic.Int64
	if s.traffic != nil {
		sent, received = &s.traffic.Sent, &s.traffic.Received
	}
	if req.Body != nil {
		req.Body = &watchedBody{ReadCloser: req.Body, w: w, ctx: ctx, count: sent}
	}
	go w.watch()
	resp, err := s.next.RoundTrip(req)
	if err != nil {
		w.stop()
		return nil, stalledOr(ctx, err)
	}
	resp.Body = &watchedBody{ReadCloser: resp.Body, w: w, ctx: ctx, stopAtEOF: true, count: received}
	return resp, nil
}

// watchdog cancels a request that moved fewer than StallBytes in a window.
type watchdog struct {
	moved  atomic.Int64
	cancel context.CancelCauseFunc
	done   chan struct{}
	closed atomic.Bool
	window time.Duration
}

func (w *watchdog) watch() {
	tick := time.NewTicker(w.window)
	defer tick.Stop()
	var last int64
	for {
		select {
		case <-w.done:
			return
		case <-tick.C:
			now := w.moved.Load()
			if now-last < StallBytes {
				w.cancel(fmt.Errorf("%w: %d bytes in %v (the least is %d)", ErrStalled, now-last, w.window, StallBytes))
				return
			}
			last = now
		}
	}
}

// stop ends the watch; the request's context is released.
func (w *watchdog) stop() {
	if w.closed.CompareAndSwap(false, true) {
		close(w.done)
		w.cancel(nil)
	}
}

// watchedBody counts what moves through a body for its watchdog.
type watchedBody struct {
	io.ReadCloser
	w         *watchdog
	ctx       context.Context
	stopAtEOF bool
	count     *atomic.Int64 // Traffic's, or nil
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.w.moved.Add(int64(n))
	if b.count != nil {
		b.count.Add(int64(n))
	}
	if err == io.EOF && b.stopAtEOF {
		b.w.stop()
	} else if err != nil {
		err = stalledOr(b.ctx, err)
	}
	return n, err
}

func (b *watchedBody) Close() error {
	err := b.ReadCloser.Close()
	if b.stopAtEOF {
		b.w.stop()
	}
	return err
}

// stalledOr returns the watchdog's error when it cancelled ctx, else err.
func stalledOr(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); errors.Is(cause, ErrStalled) {
		return cause
	}
	return err
}
