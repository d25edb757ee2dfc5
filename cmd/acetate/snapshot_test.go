package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acetate/acetate/internal/treecmp"
)

// snapshotEntry is what snapshot ls --format json says of one snapshot.
type snapshotEntry struct {
	Name     string
	FrozenNs int64
	Files    int
}

func snapshots(t *testing.T, root, name string) []snapshotEntry {
	t.Helper()
	var list []snapshotEntry
	r := ok(t, run(t, root, nil, "snapshot", "ls", name, "--format", "json"))
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
		t.Fatalf("snapshot ls json: %v: %q", err, r.stdout)
	}
	return list
}

// A running container that appends to a file is snapshotted (frozen for
// the capture, and running on after it), stopped, changed and restored:
// the file is as it was at a moment of the loop, never half a line.
// Restore refuses a running container unless --stop; rm removes.
func TestSnapshotRunning(t *testing.T) {
	root := debianStore(t)
	size := startCounter(t, root, "ctr")
	if got := snapshots(t, root, "ctr"); len(got) != 0 {
		t.Fatalf("snapshots of a new container: %v", got)
	}
	r := ok(t, run(t, root, nil, "snapshot", "create", "ctr", "s1", "--format", "json"))
	var s snapshotEntry
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil || s.Name != "s1" || s.FrozenNs <= 0 {
		t.Fatalf("snapshot of a running container: %+v (%v) in %s", s, err, r.stdout)
	}
	t.Logf("frozen for %.2f ms", float64(s.FrozenNs)/1e6)
	waitGrows(t, size) // it runs on
	if r := run(t, root, nil, "snapshot", "restore", "ctr", "s1"); r.code == 0 || !strings.Contains(r.stderr, "--stop") {
		t.Fatalf("restore of a running container: exit %d %q", r.code, r.stderr)
	}
	if r := run(t, root, nil, "snapshot", "restore", "ctr", "nope", "--stop"); r.code != exitNotFound {
		t.Fatalf("restore of a missing snapshot: exit %d %q", r.code, r.stderr)
	}
	ok(t, run(t, root, nil, "snapshot", "restore", "ctr", "s1", "--stop"))
	if st := ps(t, root)["ctr"].State; st != "exited" {
		t.Fatalf("after restore --stop: %s", st)
	}
	counter, err := os.ReadFile(filepath.Join(root, "containers/ctr/upper/counter"))
	if err != nil || len(counter) == 0 || strings.Trim(string(counter), "x\n") != "" || !strings.HasSuffix(string(counter), "x\n") {
		t.Fatalf("restored counter is torn or empty: %d bytes %q... (%v)", len(counter), counter[:min(len(counter), 20)], err)
	}
	if r := run(t, root, nil, "snapshot", "create", "ctr", "s1"); r.code == 0 {
		t.Errorf("a second s1 was taken")
	}
	if r := run(t, root, nil, "snapshot", "create", "ctr", "Bad:Name"); r.code != exitUsage {
		t.Errorf("bad snapshot name: exit %d", r.code)
	}
	ok(t, run(t, root, nil, "snapshot", "create", "ctr"))
	if got := snapshots(t, root, "ctr"); len(got) != 2 || got[0].Name != "s1" {
		t.Fatalf("snapshots: %+v", got)
	}
	ok(t, run(t, root, nil, "snapshot", "rm", "ctr", "s1"))
	ok(t, run(t, root, nil, "gc"))
	ok(t, run(t, root, nil, "fsck"))
	ok(t, run(t, root, nil, "rm", "ctr"))
	if _, err := os.Stat(filepath.Join(root, "containers/ctr")); !os.IsNotExist(err) {
		t.Errorf("rm left the container's snapshots: %v", err)
	}
}

// fillUpper writes n files of 1 MB of random content into container name's
// upper directory (a stopped container: the test stands for its writes).
func fillUpper(t *testing.T, root, name, prefix string, n int) {
	t.Helper()
	buf := make([]byte, 1<<20)
	for i := range n {
		for j := 0; j < len(buf); j += 8 {
			v := rand.Uint64()
			for k := range 8 {
				buf[j+k] = byte(v >> (8 * k))
			}
		}
		if err := os.WriteFile(filepath.Join(root, "containers", name, "upper", fmt.Sprintf("%s%03d", prefix, i)), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// kill -9 during snapshot create and restore: the store stays fsck-clean,
// the container's differences are as before (or, for restore, exactly the
// snapshot's), and a snapshot is listed only once whole.
func TestKillDuringSnapshot(t *testing.T) {
	root := debianStore(t)
	ok(t, run(t, root, nil, "create", "c", "--from", "debian"))
	fillUpper(t, root, "c", "a", 48)
	ok(t, run(t, root, nil, "snapshot", "create", "c", "a"))
	ok(t, run(t, root, nil, "clone", "c", "ref-a"))
	fillUpper(t, root, "c", "b", 48)
	ok(t, run(t, root, nil, "clone", "c", "ref-b"))
	upperOf := func(name string) string { return filepath.Join(root, "containers", name, "upper") }
	is := func(name, ref string) bool {
		return treecmp.Compare(upperOf(name), upperOf(ref), treecmp.Options{}) == nil
	}

	// Kills fall within the time a whole run takes, measured here.
	start := time.Now()
	ok(t, run(t, root, nil, "snapshot", "create", "c", "k"))
	took := time.Since(start)
	t.Logf("snapshot create of 48 MB new content: %v", took)
	ok(t, run(t, root, nil, "snapshot", "rm", "c", "k"))
	ok(t, run(t, root, nil, "gc"))
	killWithin(t, root, 4, took, []string{"snapshot", "create", "c", "k"}, func(i int) {
		if !is("c", "ref-b") {
			t.Fatalf("after kill %d of snapshot create: the container's differences changed", i)
		}
		for _, s := range snapshots(t, root, "c") {
			if s.Name == "k" {
				ok(t, run(t, root, nil, "snapshot", "rm", "c", "k"))
			}
		}
		ok(t, run(t, root, nil, "gc")) // so that the next run stages all again
	})
	start = time.Now()
	ok(t, run(t, root, nil, "snapshot", "restore", "c", "a"))
	took = time.Since(start)
	t.Logf("snapshot restore of 48 MB: %v", took)
	killWithin(t, root, 4, took, []string{"snapshot", "restore", "c", "a"}, func(i int) {
		if !is("c", "ref-a") && !is("c", "ref-b") {
			t.Fatalf("after kill %d of snapshot restore: the container is neither as before nor as the snapshot", i)
		}
	})
	ok(t, run(t, root, nil, "gc"))
	if tmp, _ := os.ReadDir(filepath.Join(root, "tmp")); len(tmp) != 0 {
		t.Errorf("gc left %d files in tmp/", len(tmp))
	}
	ok(t, run(t, root, nil, "snapshot", "restore", "c", "a"))
	if !is("c", "ref-a") {
		t.Fatal("restore after the kills: not the snapshot")
	}
}

// Snapshots of a running container that appends to a log and replaces a
// database file the safe way (write a temporary file, fsync it, rename it
// over the old one), in a loop: every snapshot restores to a state the
// container could have been in: the database whole (64 KiB), the log
// consecutive numbers ending in a whole line.
func TestSnapshotRunningWriters(t *testing.T) {
	root := debianStore(t)
	loop := `i=0; while :; do i=$((i+1)); head -c 65536 /dev/urandom > /db.tmp; sync /db.tmp; mv /db.tmp /db; echo $i >> /log; done`
	ok(t, run(t, root, nil, "create", "db", "--from", "debian", "--", "sh", "-c", loop))
	ok(t, run(t, root, nil, "start", "db"))
	t.Cleanup(func() { run(t, root, nil, "stop", "--time", "0", "db") })
	const n = 4
	for i := range n {
		time.Sleep(50 * time.Millisecond)
		ok(t, run(t, root, nil, "snapshot", "create", "db", fmt.Sprintf("s%d", i)))
	}
	ok(t, run(t, root, nil, "stop", "--time", "0", "db"))
	for i := range n {
		ok(t, run(t, root, nil, "snapshot", "restore", "db", fmt.Sprintf("s%d", i)))
		up := filepath.Join(root, "containers/db/upper")
		if fi, err := os.Stat(filepath.Join(up, "db")); err == nil && fi.Size() != 65536 {
			t.Errorf("snapshot s%d: the database is torn: %d bytes", i, fi.Size())
		}
		log, err := os.ReadFile(filepath.Join(up, "log"))
		if err != nil {
			continue // taken before the first turn of the loop ended
		}
		lines := strings.Split(string(log), "\n")
		if lines[len(lines)-1] != "" {
			t.Errorf("snapshot s%d: the log ends in half a line: %q", i, lines[len(lines)-1])
		}
		for j, l := range lines[:len(lines)-1] {
			if l != fmt.Sprint(j+1) {
				t.Errorf("snapshot s%d: log line %d is %q", i, j+1, l)
				break
			}
		}
		t.Logf("snapshot s%d: %d turns of the loop", i, len(lines)-1)
	}
}

// A booted systemd container running a service and a writer (a unit that
// appends to a log and replaces a database file with write, fsync,
// rename) is snapshotted while it runs (frozen for each capture) and keeps
// running; every snapshot restores to a state it could have been in; the
// container boots from the last one with its service answering.
func TestSnapshotBooted(t *testing.T) {
	root := machineRoot(t, "systemd")
	name := "mt-snapshot"
	machine(t, root, name, "--from", "systemd")
	ok(t, run(t, root, nil, "start", name))
	checkBooted(t, root, name, "systemd")
	loop := `i=0; while :; do i=$((i+1)); head -c 65536 /dev/urandom > /db.tmp; sync /db.tmp; mv /db.tmp /db; echo $i >> /log; done`
	ok(t, run(t, root, nil, "exec", name, "--", "systemd-run", "--unit=writer", "/bin/sh", "-c", loop))
	const n = 3
	for i := range n {
		time.Sleep(100 * time.Millisecond)
		r := ok(t, run(t, root, nil, "snapshot", "create", name, fmt.Sprintf("s%d", i), "--format", "json"))
		var s snapshotEntry
		if err := json.Unmarshal([]byte(r.stdout), &s); err != nil || s.FrozenNs <= 0 {
			t.Fatalf("snapshot of the booted container: %s (%v)", r.stdout, err)
		}
		t.Logf("s%d: frozen for %.2f ms", i, float64(s.FrozenNs)/1e6)
	}
	if st := ps(t, root)[name].State; st != "running" {
		t.Fatalf("after the snapshots: %s", st)
	}
	ok(t, run(t, root, nil, "stop", name))
	up := filepath.Join(root, "containers", name, "upper")
	for i := range n {
		ok(t, run(t, root, nil, "snapshot", "restore", name, fmt.Sprintf("s%d", i)))
		if fi, err := os.Stat(filepath.Join(up, "db")); err != nil || fi.Size() != 65536 {
			t.Errorf("snapshot s%d: the database is torn or missing: %v", i, err)
		}
		log, err := os.ReadFile(filepath.Join(up, "log"))
		if err != nil {
			t.Fatalf("snapshot s%d: %v", i, err)
		}
		lines := strings.Split(string(log), "\n")
		for j, l := range lines[:len(lines)-1] {
			if l != fmt.Sprint(j+1) {
				t.Errorf("snapshot s%d: log line %d is %q", i, j+1, l)
				break
			}
		}
		if lines[len(lines)-1] != "" {
			t.Errorf("snapshot s%d: the log ends in half a line", i)
		}
	}
	ok(t, run(t, root, nil, "start", name))
	checkBooted(t, root, name, "systemd")
	ok(t, run(t, root, nil, "stop", name))
}
