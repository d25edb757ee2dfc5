// Package memtrim gives the memory of acetate's long-lived daemons (the
// store's supervisor and its FUSE server) back to the system while they
// sit idle: the free pages of the Go heap, which the runtime would return
// over minutes, and the pages of the executable they mapped to do their
// work, which stay in the page cache, shared with every acetate command,
// and are mapped back (a minor fault each) when they are needed again.
// A host running hundreds of containers pays for these daemons once, and
// what they hold while idle is what it pays.
package memtrim

import (
	"bufio"
	"bytes"
	"context"
	"os"
	goruntime "runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Bursts says when a burst of work is over: every Period, the process
// trims if it allocated at least After bytes since its last trim and less
// than Idle bytes in the last Period.
type Bursts struct {
	Period time.Duration
	After  uint64
	Idle   uint64
}

// releasingAfterGC says ReleaseAfterEachGC is in force.
var releasingAfterGC atomic.Bool

// requested says a trim is due at the next quiet period (see Request).
var requested atomic.Bool

// Request has TrimAfterBursts trim at its next quiet period, whatever was
// allocated: for work that maps much of the executable without allocating
// much (a container's start maps 10 MiB of the supervisor's code and data).
func Request() { requested.Store(true) }

// TrimAfterBursts trims (collects garbage, returns the free pages and
// releases the file pages, see Release) after each burst of work, until
// ctx is done. A daemon runs it in a goroutine of its own.
func TrimAfterBursts(ctx context.Context, b Bursts) {
	sample := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	allocated := func() uint64 {
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	trimmed := allocated()
	last := trimmed
	tick := time.NewTicker(b.Period)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := allocated()
		if (now-trimmed >= b.After || requested.Load()) && now-last < b.Idle {
			requested.Store(false)
			debug.FreeOSMemory()
			if !releasingAfterGC.Load() { // else the collection's finalizer does
				Release()
			}
			trimmed = allocated()
		}
		last = now
	}
}

// ReleaseAfterEachGC has Release run after every garbage collection of
// this process (a finalizer, set anew each time, says when one ended): a
// collection, even the runtime's periodic one in an idle process, reads
// the executable's tables of types and stack maps.
func ReleaseAfterEachGC() {
	releasingAfterGC.Store(true)
	// 16 bytes: the tiny allocator, which shares a block between
	// smaller objects and so delays their finalizers, leaves it alone.
	type sentinel struct{ _ [16]byte }
	var arm func()
	arm = func() {
		goruntime.SetFinalizer(&sentinel{}, func(*sentinel) {
			Release()
			arm()
		})
	}
	arm()
}

// Release drops this process's mappings of the pages of files it maps
// read-only and has not changed (its executable's code and read-only
// data). A mapping holding a private copy of any of its pages (relocations
// made read-only afterwards) is left alone, as dropping it would bring
// back the file's bytes.
func Release() {
	ranges := readOnlyFileMappings()
	// Dropped all at once, after reading smaps: a fault maps the 64 KiB
	// around the page it needs (the kernel's fault-around), so reading
	// the rest of smaps after dropping each mapping mapped back a
	// megabyte of code and data.
	for _, r := range ranges {
		unix.Syscall(unix.SYS_MADVISE, r[0], r[1]-r[0], unix.MADV_DONTNEED)
	}
}

// readOnlyFileMappings returns the start and end of each mapping of a
// file that is read-only, private and holds no private copy of a page.
func readOnlyFileMappings() [][2]uintptr {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return nil
	}
	defer f.Close()
	var ranges [][2]uintptr
	var start, end uint64
	readOnlyFile := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := bytes.Fields(sc.Bytes())
		switch {
		case len(fields) >= 5 && bytes.IndexByte(fields[0], '-') > 0 && !bytes.HasSuffix(fields[0], []byte(":")):
			lo, hi, _ := strings.Cut(string(fields[0]), "-")
			start, _ = strconv.ParseUint(lo, 16, 64)
			end, _ = strconv.ParseUint(hi, 16, 64)
			perms := string(fields[1])
			readOnlyFile = string(fields[4]) != "0" && perms[1] == '-' && perms[3] == 'p'
		case readOnlyFile && len(fields) >= 2 && string(fields[0]) == "Anonymous:":
			if string(fields[1]) == "0" {
				ranges = append(ranges, [2]uintptr{uintptr(start), uintptr(end)})
			}
			readOnlyFile = false
		}
	}
	return ranges
}
