package fuse

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/acetate/acetate/fs/fstest"
	"github.com/acetate/acetate/internal/testtree"
	"github.com/acetate/acetate/layers"
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
	store, err := layers.Open(filepath.Join(tmp, "store"))
	if err != nil {
		t.Fatal(err)
	}
	tree, err := store.ReadDir(context.Background(), fixture, nil)
	if err != nil {
		t.Fatal(err)
	}
	layer, err := tree.Commit(tree.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	logged := &syncBuffer{}
	s := &storeServer{store: store, lowers: map[string]*sharedLower{}, log: log.New(logged, "", 0)}
	s.enter() // the test's own use: the server never goes idle and exits
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
		req := &mountRequest{Layers: []digest.Digest{layer},
			Upper: filepath.Join(dirs[i], "upper"), Work: filepath.Join(dirs[i], "work"), Target: filepath.Join(dirs[i], "root")}
		if i == n-1 {
			req.Layers = bad
		}
		for _, d := range []string{req.Upper, req.Work, req.Target} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		mountThrough(t, s, req)
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
		return s.active == 1 && len(s.lowers) == 0
	}, "every mount's end and the lowers dropped")
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
	s.enter()
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
