package fuse

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"maps"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/acetate/acetate/internal/daemon"
	"github.com/acetate/acetate/internal/memtrim"
	"github.com/acetate/acetate/layers"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// The files of a store's FUSE server, in the store's root directory.
const (
	// serverSocket is the unix socket (SOCK_SEQPACKET) the server takes
	// mount requests on.
	serverSocket = "fuse.sock"
	// serverLock is held (flock) by a client from before it asks for a
	// mount until the answer, and by the server while it decides to
	// exit, so that no request reaches a server on its way out.
	serverLock = "fuse.lock"
	// serverLog receives what the server logs: failed mounts, and the
	// stack of every request whose handling panicked.
	serverLog = "fuse.log"
)

// storeServerEnv names the store root of the server a re-executed binary
// is to be (see ServeIfRequested).
const storeServerEnv = "ACETATE_FUSE_SERVE"

// mountRequest is what the driver sends the store's server, with the
// descriptor of the /dev/fuse connection it mounted.
type mountRequest struct {
	Layers  []digest.Digest
	Upper   string
	Work    string
	Target  string // for the log: the server never uses it
	Options ServeOptions
}

// maxThreads bounds the server's OS threads. Each mount has a thread
// blocked reading its /dev/fuse descriptor (go-fuse reads with read(2), not
// through Go's poller), and another for a moment while it handles a
// request: Go's default of 10,000 would end the process, and every mount
// with it, at some thousands of mounts.
const maxThreads = 1 << 17

// storeServer serves every fuse mount of one store from one process: one
// go-fuse Server, and so one /dev/fuse connection, per mount, over lowers
// shared by stack, built from layer manifests shared by digest; both are
// counted and dropped when no mount uses them.
//
// What one mount cannot do to the others: its requests are handled on its
// own connection by its own go-fuse Server, over its own union (upper
// descriptors, locks, inode maps); the only state shared is the StoreLower
// of a stack, which nothing changes once built. A panic while handling a
// request is recovered by go-fuse (fuse.Server's request loop), answered
// EIO and logged here with its stack: the other mounts, and the other
// requests of the same mount, go on. A panic in a goroutine of its own,
// a fatal runtime error (concurrent map write, out of memory) or a kill
// still end the process and every mount with it; the kernel then answers
// ENOTCONN on them and the driver mounts them again (see Driver).
type storeServer struct {
	store *layers.Store
	// Server is in the store root, counts mounts served and requests
	// being handled, and logs.
	*daemon.Server

	mu sync.Mutex
	// lowers are the merged stacks the mounts use, by stackKey.
	lowers map[string]*sharedLower
	// manifests are the decoded manifests of their layers, each counted
	// once for every stack in lowers that has it: a template stacked on
	// another decodes only its own layers.
	manifests map[digest.Digest]*sharedManifest
	// mounts are the unions being served.
	mounts map[*union]struct{}
}

// sharedLower is the merged lower of a stack and how many mounts use it.
type sharedLower struct {
	lower Lower
	refs  int
}

// sharedManifest is a decoded layer manifest and how many stacks use it.
type sharedManifest struct {
	m    *layers.Manifest
	refs int
}

// stackKey names a stack of layers.
func stackKey(stack []digest.Digest) string {
	s := make([]string, len(stack))
	for i, d := range stack {
		s[i] = d.String()
	}
	return strings.Join(s, ",")
}

// serveStore runs the FUSE server of the store at root: it listens on the
// store's socket, calls ready, and serves mounts until none is left.
func serveStore(root string, ready func(error)) {
	s, l, err := listenStore(root)
	ready(err)
	if err != nil {
		os.Exit(1)
	}
	s.Serve(l, func(c *net.UnixConn) {
		if !s.handle(c) {
			s.Leave()
		}
	})
}

// The store's server makes, per mount, the nodes of every file the
// container looks up (a booted systemd some hundreds, which a prune later
// drops but a few dozen of), most of them in a burst while the container
// boots, among as much garbage. trimBursts collects that garbage and returns the free pages
// once a burst of requests is over, instead of letting the runtime return
// them over the following minutes: 100 booted systemd containers on the
// fuse driver cost 9.8 MiB each with it, 10.0 without; 10 cost 13.5 and
// 14.1 (bench boot, 2026-12-01).
var trimBursts = memtrim.Bursts{Period: 2 * time.Second, After: 16 << 20, Idle: 1 << 20}

// gcPercent is the server's GOGC (unless the environment sets one): a
// collection at every quarter of growth rather than at every doubling, so
// that the garbage of a burst is collected while the nodes made among it
// are few, and the spans they end up in are fuller: the server of 10
// booted systemd containers held 15.1-15.5 MiB idle with 25 against
// 19.7-20.0 with Go's 100 (and 17.8 with 50, 14.8 with 10; by hand,
// 2026-12-01).
const gcPercent = 25

// listenStore sets the process up as the store's server and listens on
// its socket. The client that started it holds serverLock.
func listenStore(root string) (*storeServer, *net.UnixListener, error) {
	runtime.GOMAXPROCS(serveProcs)
	debug.SetMaxThreads(maxThreads)
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	daemon.RaiseFileLimit()
	store, err := layers.Open(root)
	if err != nil {
		return nil, nil, err
	}
	dir, err := daemon.OpenDir(root)
	if err != nil {
		return nil, nil, err
	}
	s := newStoreServer(store, &daemon.Server{Dir: dir, Socket: serverSocket, LockFile: serverLock})
	go memtrim.TrimAfterBursts(context.Background(), trimBursts)
	go s.pruneQuietMounts(context.Background())
	logFile, err := os.OpenFile(filepath.Join(root, serverLog), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("fuse server: %w", err)
	}
	// go-fuse logs to the standard logger; the runtime's fatal errors go
	// to descriptor 2.
	unix.Dup2(int(logFile.Fd()), 2)
	log.SetOutput(logFile)
	s.Log = log.Default()
	l, err := daemon.Listen(dir, serverSocket)
	if err != nil {
		return nil, nil, fmt.Errorf("fuse server: %w", err)
	}
	return s, l, nil
}

// newStoreServer is the server of store, serving nothing yet.
func newStoreServer(store *layers.Store, d *daemon.Server) *storeServer {
	return &storeServer{store: store, Server: d, lowers: map[string]*sharedLower{},
		manifests: map[digest.Digest]*sharedManifest{}, mounts: map[*union]struct{}{}}
}

// handle answers one request on c and reports whether it made a mount,
// which then counts as active until it ends.
func (s *storeServer) handle(c *net.UnixConn) bool {
	defer c.Close()
	req, fd, err := readRequest(c)
	if err == nil {
		err = s.mount(req, fd)
	}
	answer := readyMessage
	if err != nil {
		if req != nil {
			s.Log.Printf("mount %s: %v", req.Target, err)
		}
		answer = err.Error()
	}
	c.Write([]byte(answer)) // a client gone unmounts on its own
	return err == nil
}

// readRequest reads a mount request and its descriptor from c, which must
// come from root (or the server's own user).
func readRequest(c *net.UnixConn) (*mountRequest, int, error) {
	if err := daemon.CheckPeer(c); err != nil {
		return nil, -1, err
	}
	buf := make([]byte, 64<<10)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, -1, fmt.Errorf("read request: %w", err)
	}
	fd := -1
	if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil && len(msgs) == 1 {
		if fds, err := unix.ParseUnixRights(&msgs[0]); err == nil && len(fds) == 1 {
			fd = fds[0]
		}
	}
	var req mountRequest
	if err := json.Unmarshal(buf[:n], &req); err != nil || fd < 0 {
		if fd >= 0 {
			unix.Close(fd)
		}
		return nil, -1, errors.New("bad mount request")
	}
	return &req, fd, nil
}

// mount serves the connection fd (which it takes over) as the union of
// the request's layers and upper directory.
func (s *storeServer) mount(req *mountRequest, fd int) error {
	lower, err := s.acquire(req.Layers)
	if err != nil {
		unix.Close(fd)
		return err
	}
	u, err := openUnion(lower, req.Upper, req.Work, req.Options)
	if err != nil {
		unix.Close(fd)
		s.release(req.Layers)
		return err
	}
	panicked := func(r any) fuse.Status {
		s.Log.Printf("mount %s: a request panicked (answered EIO): %v\n%s", req.Target, r, debug.Stack())
		return fuse.EIO
	}
	// Watched from before the first request (a mount not yet served
	// has looked nothing up, and is not pruned), so that it is never
	// watched after it ended.
	s.watch(u, true)
	drop := func() {
		s.watch(u, false)
		s.release(req.Layers)
	}
	ended := func() {
		drop()
		s.Leave()
	}
	if _, err := serve(u, "/dev/fd/"+strconv.Itoa(fd), req.Options, panicked, ended); err != nil {
		drop()
		return err
	}
	// A mount maps much of the server's code and may decode a template's
	// manifests: give back what it took once the server is quiet.
	memtrim.Request()
	return nil
}

// watch adds u to the mounts the pruner watches, or removes it.
func (s *storeServer) watch(u *union, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if on {
		s.mounts[u] = struct{}{}
	} else {
		delete(s.mounts, u)
	}
}

// pruneQuietMounts prunes (see prune), every pruneTick until ctx is done,
// each mount that has gone quiet after looking names up (quietWatch), and
// has the process trim once it is quiet itself. A mount is pruned as soon
// as its own container is done, not when all are: while 100 containers
// boot, the nodes the first ones no longer need are freed and their slots
// taken by the next ones' nodes. Pruned all at once at the end, they left
// holes in pages each of which a surviving node keeps (100 booted on the
// fuse driver: 9.47 MiB a container, against 9.30).
func (s *storeServer) pruneQuietMounts(ctx context.Context) {
	tick := time.NewTicker(pruneTick)
	defer tick.Stop()
	watches := map[*union]*quietWatch{}
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			s.mu.Lock()
			mounts := slices.Collect(maps.Keys(s.mounts))
			s.mu.Unlock()
			live := make(map[*union]*quietWatch, len(mounts))
			pruned := false
			for _, u := range mounts {
				w := watches[u]
				if w == nil {
					w = &quietWatch{since: now}
				}
				live[u] = w
				if w.due(u.lookups.Load(), now) {
					prune(u)
					pruned = true
				}
			}
			watches = live // a mount gone is watched no more
			if pruned {
				memtrim.Request()
			}
		}
	}
}

// acquire returns the merged lower of stack, decoding its manifests once
// for every mount that uses it.
func (s *storeServer) acquire(stack []digest.Digest) (Lower, error) {
	key := stackKey(stack)
	s.mu.Lock()
	defer s.mu.Unlock()
	if sl, ok := s.lowers[key]; ok {
		sl.refs++
		return sl.lower, nil
	}
	var got []digest.Digest
	l, err := newStoreLower(s.store, stack, func(d digest.Digest) (*layers.Manifest, error) {
		m, err := s.manifest(d)
		if err == nil {
			got = append(got, d)
		}
		return m, err
	})
	if err != nil {
		s.dropManifests(got)
		return nil, err
	}
	s.lowers[key] = &sharedLower{lower: l, refs: 1}
	return l, nil
}

// manifest returns the decoded manifest of layer d, for one more stack;
// s.mu is held.
func (s *storeServer) manifest(d digest.Digest) (*layers.Manifest, error) {
	if sm, ok := s.manifests[d]; ok {
		sm.refs++
		return sm.m, nil
	}
	m, err := s.store.ReadLayer(d)
	if err != nil {
		return nil, err
	}
	s.manifests[d] = &sharedManifest{m: m, refs: 1}
	return m, nil
}

// dropManifests drops one stack's use of the manifests of layers; s.mu
// is held.
func (s *storeServer) dropManifests(layers []digest.Digest) {
	for _, d := range layers {
		if sm := s.manifests[d]; sm != nil {
			if sm.refs--; sm.refs == 0 {
				delete(s.manifests, d)
			}
		}
	}
}

// release drops a mount's use of stack; a stack no mount uses is dropped.
func (s *storeServer) release(stack []digest.Digest) {
	key := stackKey(stack)
	s.mu.Lock()
	defer s.mu.Unlock()
	if sl := s.lowers[key]; sl != nil {
		if sl.refs--; sl.refs == 0 {
			delete(s.lowers, key)
			s.dropManifests(stack)
		}
	}
}
