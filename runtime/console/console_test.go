package console

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acetate/acetate/internal/testtree"
)

// A server holds a pty, keeps its output for a client that attaches later,
// types the client's input on it, and detaches the client on the detach
// key; a socket path too long for a unix address (a deep store) works too.
func TestServeAttach(t *testing.T) {
	deep := filepath.Join(t.TempDir(), strings.Repeat("d", 60), strings.Repeat("e", 60))
	if err := os.MkdirAll(deep, 0o700); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(deep, "console.sock")
	master, slave := testtree.PTY(t)
	srv, err := Serve(sock, map[string]*os.File{"console": master}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	slave.Write([]byte("boot line\n"))
	waitKept(t, srv.ptys["console"], "boot line")
	in, typed := pipe(t)
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- Attach(sock, "console", in, &out, DefaultDetachKey) }()
	typed.Write([]byte("hello\n"))
	got := make([]byte, 64)
	slave.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _ := slave.Read(got)
	if !strings.Contains(string(got[:n]), "hello") {
		t.Errorf("the pty read %q, want what the client typed", got[:n])
	}
	typed.Write([]byte{DefaultDetachKey})
	if err := <-done; err != ErrDetached {
		t.Errorf("Attach: %v, want ErrDetached", err)
	}
	if !strings.Contains(out.string(), "boot line") {
		t.Errorf("the client saw %q, want the output kept from before it attached", out.string())
	}
	if err := Attach(sock, "tty9", nil, io.Discard, 0); err == nil || !strings.Contains(err.Error(), "no pty") {
		t.Errorf("Attach to a missing pty: %v", err)
	}
}

func pipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

// waitKept waits (at most 5 s) until the server has read want from p.
func waitKept(t *testing.T, p *pty, want string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		p.mu.Lock()
		kept := string(p.kept)
		p.mu.Unlock()
		if strings.Contains(kept, want) {
			return
		}
	}
	t.Fatalf("the server never read %q", want)
}

// syncBuffer is a buffer that a client's output goroutine writes while the
// test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) string() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
