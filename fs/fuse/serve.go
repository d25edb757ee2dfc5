package fuse

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// cacheTimeout is how long the kernel may keep entries and attributes.
// Lower entries never change and the upper directory changes only through
// this server, which tells the kernel, so any long value is safe.
const cacheTimeout = 24 * time.Hour

// ServeOptions tune one mount served in this process.
type ServeOptions struct {
	// ReadOnly refuses every change with EROFS and mounts read-only.
	ReadOnly bool
	// NoSuid mounts nosuid: the host's view honours no set-id bit.
	NoSuid bool
	// DisableReadDirPlus makes directory listings return names only; see
	// the benchmarks for when it pays.
	DisableReadDirPlus bool
	// Debug logs every FUSE request.
	Debug bool
}

// A process serving FUSE mounts runs its Go code on one P (serveProcs),
// and each mount reads and handles one request at a time (oneRequest, its
// MaxInflightRequestBytes: less than a request, which go-fuse takes as
// one), on the thread that read it, as fuse-overlayfs's single thread
// does. Otherwise go-fuse keeps a second reader blocked in read(2) per
// mount, the kernel hands the next request to that one, often on the
// other CPU and waking it from idle, and a goroutine started while a P is
// idle wakes a thread to run it. One request's round trip (getxattr, the
// store's server) took 7-10 µs against 17-36 µs at GOMAXPROCS 8 with
// go-fuse's readers, and untar into 4 containers at once 2.6 s against
// 3.6 s (2026-12-01, 2 CPUs; bench/RESULTS.md). A system call that blocks
// (a disk read) gives the P up, so a slow request of one mount holds up
// that mount only; what one P bounds is the Go code of all the mounts at
// once.
const (
	serveProcs = 1
	oneRequest = 1
)

// Serve mounts the union of lower and the upper directory upper at target
// and serves it from this process until it is unmounted (server.Wait).
// work is a scratch directory on upper's filesystem. Serve needs root: it
// mounts directly, without fusermount, and registers passthrough backing
// files (Linux 6.9+, CAP_SYS_ADMIN); without passthrough, reads and writes
// are served through this process. It sets the process's GOMAXPROCS to
// serveProcs.
func Serve(target string, lower Lower, upper, work string, o ServeOptions) (*fuse.Server, error) {
	runtime.GOMAXPROCS(serveProcs)
	u, err := openUnion(lower, upper, work, o)
	if err != nil {
		return nil, err
	}
	server, err := serve(u, target, o, nil, func() {})
	if err != nil {
		return nil, fmt.Errorf("fuse: mount %s: %w", target, err)
	}
	return server, nil
}

// openUnion opens the upper and work directories of a mount over lower.
func openUnion(lower Lower, upper, work string, o ServeOptions) (*union, error) {
	var err error
	if upper, err = filepath.Abs(upper); err != nil {
		return nil, fmt.Errorf("fuse: upper: %w", err)
	}
	if work, err = filepath.Abs(work); err != nil {
		return nil, fmt.Errorf("fuse: work: %w", err)
	}
	return newUnion(lower, upper, work, o.ReadOnly)
}

// mountFlags are the mount(2) flags of a mount with options o.
func mountFlags(o ServeOptions) uintptr {
	// nodev: a device node in a template or an upper directory never
	// opens a host device through the mount (a container cannot make one;
	// a template can ship one, and overlayfs mounts are nodev too).
	flags := uintptr(syscall.MS_RELATIME | syscall.MS_NODEV)
	if o.ReadOnly {
		flags |= syscall.MS_RDONLY
	}
	if o.NoSuid {
		flags |= syscall.MS_NOSUID
	}
	return flags
}

// maxWrite is the largest write request (and max_read of the mount), as
// fuse-overlayfs's (libfuse's default). go-fuse gives every goroutine
// reading the device a buffer of this size, one per mount with oneRequest;
// with two or three per mount, 1,000 mounts, each listed and read from
// twice, held 526 MiB (Pss) with 1 MiB and 267 MiB with 128 KiB
// (2026-12-01). Passthrough reads and writes never reach the server,
// whatever the size.
const maxWrite = 128 << 10

// mountData is the data argument of mount(2) for a FUSE connection on
// descriptor fd, as go-fuse's direct mount passes it.
func mountData(fd int) string {
	return fmt.Sprintf("fd=%d,rootmode=%o,user_id=0,group_id=0,max_read=%d,default_permissions,allow_other",
		fd, syscall.S_IFDIR, maxWrite)
}

// serve serves u at mountPoint: a directory, which go-fuse mounts, or
// "/dev/fd/N", a FUSE connection the caller mounted. It returns once the
// kernel's INIT is answered. panicked, when set, is told of a request
// whose handling panicked (go-fuse recovers it and answers EIO). Once the
// mount is gone, u is closed and ended called, on the goroutine that
// served it: a mount costs one goroutine, not a second one waiting for
// the first (100 booted containers on one server: 100 stacks fewer). On
// an error nothing is served, u is closed and ended is never called.
func serve(u *union, mountPoint string, o ServeOptions, panicked func(any) fuse.Status, ended func()) (*fuse.Server, error) {
	direct := !strings.HasPrefix(mountPoint, "/dev/fd/")
	opts := &fuse.MountOptions{
		AllowOther:              true,
		FsName:                  "acetate",
		Name:                    "acetate",
		DirectMount:             direct,
		DirectMountStrict:       direct,
		DirectMountFlags:        mountFlags(o),
		Options:                 []string{"default_permissions"},
		EnableSymlinkCaching:    true,
		DisableReadDirPlus:      o.DisableReadDirPlus,
		MaxWrite:                maxWrite,
		MaxInflightRequestBytes: oneRequest,
		MaxReadAhead:            1 << 20,
		Debug:                   o.Debug,
		PanicHandler:            panicked,
		// The kernel then marks inodes without security xattrs or
		// setuid bits (S_NOSEC) and stops asking for
		// security.capability before every write. Writes land in the
		// upper file, whose own filesystem drops those bits.
		ExtraCapabilities: fuse.CAP_HANDLE_KILLPRIV_V2,
	}
	syscall.Umask(0)
	server, err := fuse.NewServer(newRawFS(u), mountPoint, opts)
	if err != nil {
		u.close()
		return nil, err
	}
	mounted := make(chan bool, 1)
	go func() {
		server.Serve()
		u.close()
		if <-mounted {
			ended()
		}
	}()
	if err := server.WaitMount(); err != nil {
		mounted <- false
		server.Unmount()
		return nil, err
	}
	mounted <- true
	u.passthrough.Store(server.KernelSettings().Flags64()&fuse.CAP_PASSTHROUGH != 0 && os.Geteuid() == 0)
	return server, nil
}
