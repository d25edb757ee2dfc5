package runtime

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// releaseFilePages unmaps the pages of this process's executable that it
// has not changed, and the process goes on (it maps back what it runs).
func TestReleaseFilePages(t *testing.T) {
	before := pssFile(t)
	releaseFilePages()
	after := pssFile(t)
	if after >= before {
		t.Fatalf("file pages mapped: %d kB before, %d kB after; want fewer", before, after)
	}
	t.Logf("file pages mapped: %d kB before, %d kB after", before, after)
	if r := sh(t, "echo still running"); r.stdout != "still running\n" {
		t.Fatalf("a container after the release: %+v", r)
	}
}

// pssFile is the kB of file pages this process maps, in shares (smaps_rollup's
// Pss_File).
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
