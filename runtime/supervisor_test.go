package runtime

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"
)

// One supervisor runs every container started with one Supervisor
// directory: their inits are its children, it keeps no thread for each
// (it waits for them on Go's poller), and it exits once the last of them
// has ended (so that nothing of acetate's is left running).
func TestOneSupervisor(t *testing.T) {
	const n = 12
	sup := t.TempDir()
	supervisors := map[int]bool{}
	var dirs []string
	for i := range n {
		dir := filepath.Join(sup, fmt.Sprint("c", i))
		_, pid := startTest(t, Spec{StateDir: dir, Supervisor: sup, Args: []string{"sleep", "1000"}})
		supervisors[parentPid(t, pid)] = true
		dirs = append(dirs, dir)
	}
	if len(supervisors) != 1 {
		t.Fatalf("the inits have %d parents, want one supervisor: %v", len(supervisors), supervisors)
	}
	var s int
	for s = range supervisors {
	}
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", s))
	if arg0, _, _ := bytes.Cut(cmdline, []byte{0}); string(arg0) != "acetate-supervisor" {
		t.Fatalf("the inits' parent %d is %q, want acetate-supervisor", s, arg0)
	}
	if threads, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", s)); len(threads) >= n {
		t.Errorf("the supervisor of %d containers has %d threads, want fewer than one each", n, len(threads))
	}
	for _, dir := range dirs {
		if err := Stop(dir, 0); err != nil {
			t.Fatal(err)
		}
	}
	// This test process started it: once it exits it is a zombie here.
	waitFor(t, "the supervisor to exit once it runs nothing", func() bool {
		st := processState(s)
		return st == "" || st == "Z"
	})
	if _, err := os.Stat(filepath.Join(sup, supervisorSocket)); !os.IsNotExist(err) {
		t.Errorf("the supervisor left its socket: %v", err)
	}
}

// parentPid is the parent of process pid.
func parentPid(t *testing.T, pid int) int {
	t.Helper()
	f := strings.Fields(processStat(pid))
	if len(f) < 2 {
		t.Fatalf("no /proc/%d/stat", pid)
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// processState is the state letter of process pid ("" when it is gone).
func processState(pid int) string {
	if f := strings.Fields(processStat(pid)); len(f) > 0 {
		return f[0]
	}
	return ""
}

// processStat is /proc/PID/stat after the command's name: state, ppid, ...
func processStat(pid int) string {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if i := bytes.LastIndexByte(data, ')'); i >= 0 {
		return string(data[i+1:])
	}
	return ""
}

// The supervisor waits for each of its containers without a goroutine
// beside the wait (it relays no signal, and its context is never done):
// such a goroutine would be blocked for the container's whole life, one
// more stack for each container a supervisor runs. A foreground Run, which
// relays its caller's signals, keeps one.
func TestSuperviseWatchesOnlyWhenNeeded(t *testing.T) {
	for _, relay := range []bool{false, true} {
		cmd := exec.Command("sleep", "0.3")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		p := &initProcess{cmd: cmd}
		ended := make(chan error)
		go func() {
			_, err := p.supervise(context.Background(), relay, func() {})
			ended <- err
		}()
		time.Sleep(100 * time.Millisecond)
		var stacks bytes.Buffer
		pprof.Lookup("goroutine").WriteTo(&stacks, 2)
		watching := strings.Contains(stacks.String(), "(*initProcess).supervise.func1")
		if err := <-ended; err != nil {
			t.Fatal(err)
		}
		if watching != relay {
			t.Errorf("relay %v: a goroutine watches beside the wait: %v, want %v", relay, watching, relay)
		}
	}
}
