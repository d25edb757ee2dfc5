package memtrim

import (
	"context"
	"os"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Release unmaps the pages of this process's executable that it has not
// changed, and the process goes on (it maps back what it runs, 64 KiB at
// a time: what the test runs after the release is mapped back at once).
func TestRelease(t *testing.T) {
	before := pssFile(t)
	Release()
	after := pssFile(t)
	if after > before*3/4 {
		t.Fatalf("file pages mapped: %d kB before, %d kB after; want a quarter fewer at least", before, after)
	}
	t.Logf("file pages mapped: %d kB before, %d kB after", before, after)
	if out, err := exec.Command("echo", "still running").Output(); err != nil || string(out) != "still running\n" {
		t.Fatalf("a command after the release: %q %v", out, err)
	}
}

// A requested trim comes at the next quiet period, however little was
// allocated; none comes unrequested (the reference).
func TestRequest(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const period = 20 * time.Millisecond
	go TrimAfterBursts(ctx, Bursts{Period: period, After: 1 << 40, Idle: 1 << 20})
	before := forcedGCs()
	time.Sleep(5 * period)
	if n := forcedGCs(); n != before {
		t.Fatalf("%d trims unrequested", n-before)
	}
	Request()
	for deadline := time.Now().Add(5 * time.Second); forcedGCs() == before && time.Now().Before(deadline); {
		time.Sleep(period)
	}
	if forcedGCs() == before {
		t.Fatal("no trim 5 s after the request")
	}
}

// forcedGCs counts the collections the process forced (a trim forces one).
func forcedGCs() uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/forced:gc-cycles"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// After a burst of garbage, TrimAfterBursts returns the heap's free pages
// within a few periods; the runtime alone keeps them (the reference: the
// same burst before the trimmer runs).
func TestTrimAfterBursts(t *testing.T) {
	burst()
	runtime.GC()
	time.Sleep(100 * time.Millisecond)
	kept := heapFree()
	if kept < 16<<20 {
		t.Skipf("the runtime alone returned the burst's pages (%d bytes free left): nothing to compare with", kept)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go TrimAfterBursts(ctx, Bursts{Period: 20 * time.Millisecond, After: 1 << 20, Idle: 1 << 20})
	burst()
	var free uint64
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if free = heapFree(); free < 2<<20 {
			break
		}
	}
	if free >= 2<<20 {
		t.Fatalf("%d bytes of free heap kept after the burst, want < 2 MiB (the runtime alone kept %d)", free, kept)
	}
	t.Logf("free heap after the burst: %d bytes trimmed, %d bytes by the runtime alone", free, kept)
}

var sink [][]byte

// burst allocates and drops 48 MiB.
func burst() {
	for range 48 {
		sink = append(sink, make([]byte, 1<<20))
	}
	sink = nil
}

// heapFree is the heap's free memory not yet returned to the system.
func heapFree() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/free:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// pssFile is the kB of file pages this process maps, in shares
// (smaps_rollup's Pss_File).
func pssFile(t *testing.T) int {
	t.Helper()
	data, err := os.ReadFile("/proc/self/smaps_rollup")
	if err != nil {
		t.Skipf("no smaps_rollup: %v", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "Pss_File:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	t.Fatal("no Pss_File in smaps_rollup")
	return 0
}
