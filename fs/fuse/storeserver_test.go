package fuse

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/acetate/acetate/fs/fstest"
	"github.com/acetate/acetate/internal/daemon"
	"github.com/acetate/acetate/internal/testtree"
	"github.com/acetate/acetate/layers"
	"github.com/acetate/acetate/layers/layerstest"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// panicLower is a crafted failure: a Lower that panics when the merged
// view looks up one path, as a bug in the handling of one container's
// request would.
type panicLower struct {
	Lower
	path string
}

func (l panicLower) Lookup(p string) (*Entry, bool) {
	if p == l.path {
		panic("crafted failure at " + p)
	}
	return l.Lower.Lookup(p)
}

// syncBuffer is a log destination shared by the mounts' goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// One server serves 200 mounts of one template, each on its own FUSE
// connection over one shared lower: a write in each lands in its own
// upper directory. A request that panics in one mount's handling answers
// EIO there and is logged; that mount's other requests, and the other 199
// mounts, go on serving. An unmount of one leaves the others serving and
// the shared lower in use; the last unmount drops it.
func TestStoreServer200Mounts(t *testing.T) {
	testtree.RequireRoot(t)
	const n = 200
	tmp := t.TempDir()
	fixture := filepath.Join(tmp, "fixture")
	fstest.Fixture(t, fixture)
	store, layer := layerstest.StoreOf(t, filepath.Join(tmp, "store"), fixture)
	logged := &syncBuffer{}
	s := newTestServer(store, logged)
	// The crafted mount's stack is a lower seeded in the cache.
	bad := []digest.Digest{digest.FromString("crafted")}
	good, err := NewStoreLower(store, []digest.Digest{layer})
	if err != nil {
		t.Fatal(err)
	}
	s.lowers[stackKey(bad)] = &sharedLower{lower: panicLower{Lower: good, path: "/etc/passwd"}}

	dirs := make([]string, n)
	for i := range dirs {
		dirs[i] = filepath.Join(tmp, fmt.Sprint("c", i))
		stack := []digest.Digest{layer}
		if i == n-1 {
			stack = bad
		}
		mountThrough(t, s, newMountRequest(t, dirs[i], stack))
	}
	if len(s.lowers) != 2 || s.lowers[stackKey([]digest.Digest{layer})].refs != n-1 {
		t.Fatalf("shared lowers: %d stacks, want the template's used by %d mounts and the crafted one", len(s.lowers), n-1)
	}
	for i, d := range dirs {
		if err := os.WriteFile(filepath.Join(d, "root/tmp/mine"), []byte(d), 0o644); err != nil {
			t.Fatalf("write in mount %d: %v", i, err)
		}
	}
	for i, d := range dirs {
		if b, err := os.ReadFile(filepath.Join(d, "upper/tmp/mine")); err != nil || string(b) != d {
			t.Fatalf("upper of mount %d holds %q, %v; want its own write", i, b, err)
		}
	}

	crafted := filepath.Join(dirs[n-1], "root")
	if _, err := os.ReadFile(filepath.Join(crafted, "etc/passwd")); !errors.Is(err, syscall.EIO) {
		t.Fatalf("read of the crafted path: %v, want EIO", err)
	}
	if !strings.Contains(logged.String(), "crafted failure at /etc/passwd") || !strings.Contains(logged.String(), "goroutine") {
		t.Errorf("the panic is not logged with its stack:\n%s", logged)
	}
	if _, err := os.ReadFile(filepath.Join(crafted, "tree/x")); err != nil {
		t.Errorf("the crafted mount's other files after its panic: %v", err)
	}
	serving := func(skip int) {
		t.Helper()
		for i, d := range dirs[:n-1] {
			if i == skip {
				continue
			}
			if b, err := os.ReadFile(filepath.Join(d, "root/etc/passwd")); err != nil || !strings.HasPrefix(string(b), "root:") {
				t.Fatalf("mount %d after the crafted failure: %q, %v", i, b, err)
			}
		}
	}
	serving(-1)

	if err := unix.Unmount(filepath.Join(dirs[0], "root"), 0); err != nil {
		t.Fatal(err)
	}
	serving(0)
	for i, d := range dirs[1:] {
		if err := unix.Unmount(filepath.Join(d, "root"), 0); err != nil {
			t.Fatalf("unmount %d: %v", i+1, err)
		}
	}
	waitFor(t, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.Active() == 1 && len(s.lowers) == 0 && len(s.manifests) == 0
	}, "every mount's end and the lowers dropped")
}

// newTestServer is a store server in this process, logging to w, that
// never exits for being idle: the test holds a use of it.
func newTestServer(store *layers.Store, w io.Writer) *storeServer {
	s := newStoreServer(store, &daemon.Server{Dir: -1, Log: log.New(w, "", 0)})
	s.Enter()
	return s
}

// Two templates, one stacked on the other, mounted through one server:
// the base layer's manifest is decoded once and shared by both stacks,
// each stack's lower is its own, and every one is dropped with the last
// mount that uses it.
func TestStoreServerSharesManifests(t *testing.T) {
	testtree.RequireRoot(t)
	tmp := t.TempDir()
	store, err := layers.Open(filepath.Join(tmp, "store"))
	if err != nil {
		t.Fatal(err)
	}
	commit := func(files map[string]string) digest.Digest {
		dir := t.TempDir()
		for name, content := range files {
			p := filepath.Join(dir, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		d, err := layerstest.CommitDir(store, dir)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	base := commit(map[string]string{"etc/os-release": "base\n"})
	app := commit(map[string]string{"srv/app": "app\n"})
	s := newTestServer(store, io.Discard)
	var targets []string
	for i, stack := range [][]digest.Digest{{base}, {base, app}} {
		req := newMountRequest(t, filepath.Join(tmp, fmt.Sprint("c", i)), stack)
		mountThrough(t, s, req)
		targets = append(targets, req.Target)
	}
	if b, err := os.ReadFile(filepath.Join(targets[1], "srv/app")); err != nil || string(b) != "app\n" {
		t.Fatalf("the stacked template's file: %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(targets[0], "srv/app")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the base template's mount shows the app layer: %v", err)
	}
	s.mu.Lock()
	shared, own, stacks := s.manifests[base], s.manifests[app], len(s.lowers)
	s.mu.Unlock()
	if shared == nil || shared.refs != 2 || own == nil || own.refs != 1 || stacks != 2 {
		t.Fatalf("base manifest %+v, app manifest %+v, %d lowers: want the base shared by 2 stacks", shared, own, stacks)
	}
	if err := unix.Unmount(targets[1], 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.lowers) == 1 && s.manifests[app] == nil && s.manifests[base] != nil && s.manifests[base].refs == 1
	}, "the stacked template's lower and manifest dropped, the base kept")
	if err := unix.Unmount(targets[0], 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.lowers) == 0 && len(s.manifests) == 0
	}, "every lower and manifest dropped")
}

// newMountRequest is a request to mount stack, with new upper, work and
// target directories in dir.
func newMountRequest(t *testing.T, dir string, stack []digest.Digest) *mountRequest {
	t.Helper()
	req := &mountRequest{Layers: stack, Upper: filepath.Join(dir, "upper"), Work: filepath.Join(dir, "work"), Target: filepath.Join(dir, "root")}
	for _, d := range []string{req.Upper, req.Work, req.Target} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return req
}

// mountThrough mounts a FUSE connection at req.Target as the driver does,
// and has s serve it.
func mountThrough(t *testing.T, s *storeServer, req *mountRequest) {
	t.Helper()
	fd, err := unix.Open("/dev/fuse", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Mount("acetate", req.Target, "fuse.acetate", mountFlags(req.Options), mountData(fd)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(req.Target, unix.MNT_DETACH) })
	served, err := unix.Dup(fd)
	if err != nil {
		t.Fatal(err)
	}
	s.Enter()
	if err := s.mount(req, served); err != nil {
		t.Fatal(err)
	}
	noPoll(t, req.Target)
}

// noPoll has the kernel learn that the mount at target answers no POLL,
// as go-fuse does for the mounts it makes (not for /dev/fd/N ones). This
// process is then server and client: os.Open registers every file with
// its epoll descriptor, and the kernel would ask the server for POLL while
// holding that descriptor's lock, which a reader of the server waits for.
func noPoll(t *testing.T, target string) {
	t.Helper()
	fd, err := unix.Open(filepath.Join(target, ".go-fuse-epoll-hack"), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN | unix.POLLPRI | unix.POLLOUT}}, 0)
	unix.Close(fd)
}

// waitFor waits up to 5 s for cond.
func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("no %s after 5 s", what)
}
