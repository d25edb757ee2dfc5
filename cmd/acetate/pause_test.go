package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// counterLoop is a container command that appends a line to /counter every
// 10 ms, for as long as it runs.
var counterLoop = []string{"--", "sh", "-c", "while :; do echo x >> /counter; sleep 0.01; done"}

// startCounter creates and starts container name running counterLoop, stops
// it at cleanup, and returns a function giving the size of its /counter,
// read from the host through the mounted root.
func startCounter(t *testing.T, root, name string) func() int64 {
	t.Helper()
	ok(t, run(t, root, nil, append([]string{"create", name, "--from", "debian"}, counterLoop...)...))
	return runCounter(t, root, name)
}

// runCounter is startCounter for the created container name.
func runCounter(t *testing.T, root, name string) func() int64 {
	t.Helper()
	ok(t, run(t, root, nil, "start", name))
	t.Cleanup(func() { run(t, root, nil, "stop", "--time", "0", name) })
	var st struct{ MountedAt string }
	if err := json.Unmarshal([]byte(ok(t, run(t, root, nil, "inspect", name, "--format", "json")).stdout), &st); err != nil || st.MountedAt == "" {
		t.Fatalf("inspect of a running container: no mountedAt (%v)", err)
	}
	counter := filepath.Join(st.MountedAt, "counter")
	size := func() int64 {
		fi, err := os.Stat(counter)
		if err != nil {
			return 0
		}
		return fi.Size()
	}
	waitGrows(t, size)
	return size
}

// waitGrows waits until size grows, for up to 30 s.
func waitGrows(t *testing.T, size func() int64) {
	t.Helper()
	before := size()
	for deadline := time.Now().Add(30 * time.Second); size() == before; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the container's counter stays at %d bytes", before)
		}
	}
}

// pause and unpause: a paused container's loop stops, ps says "paused",
// and it goes on after unpause; stop works on a paused container.
func TestPauseUnpause(t *testing.T) {
	root := debianStore(t)
	size := startCounter(t, root, "ctr")
	ok(t, run(t, root, nil, "pause", "ctr"))
	if got := ps(t, root)["ctr"].State; got != "paused" {
		t.Fatalf("state after pause: %q", got)
	}
	if r := ok(t, run(t, root, nil, "inspect", "ctr", "--format", "json")); !strings.Contains(r.stdout, `"state": "paused"`) {
		t.Errorf("inspect of a paused container: %s", r.stdout)
	}
	if r := ok(t, run(t, root, nil, "ps")); !strings.Contains(r.stdout, "paused") {
		t.Errorf("ps without -a leaves out the paused container: %q", r.stdout)
	}
	frozen := size()
	time.Sleep(300 * time.Millisecond)
	if now := size(); now != frozen {
		t.Fatalf("paused container still writes: %d -> %d bytes", frozen, now)
	}
	ok(t, run(t, root, nil, "unpause", "ctr"))
	waitGrows(t, size)
	if got := ps(t, root)["ctr"].State; got != "running" {
		t.Fatalf("state after unpause: %q", got)
	}
	ok(t, run(t, root, nil, "pause", "ctr"))
	ok(t, run(t, root, nil, "stop", "--time", "1", "ctr"))
	if got := ps(t, root)["ctr"].State; got != "exited" {
		t.Fatalf("state after stop of a paused container: %q", got)
	}
	if r := run(t, root, nil, "pause", "ctr"); r.code == 0 || !strings.Contains(r.stderr, "not running") {
		t.Errorf("pause of a stopped container: exit %d %q", r.code, r.stderr)
	}
	if r := run(t, root, nil, "pause"); r.code != exitUsage {
		t.Errorf("pause without NAME: exit %d", r.code)
	}
}
