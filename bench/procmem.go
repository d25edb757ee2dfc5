package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// proc is one process and its proportional set size.
type proc struct {
	pid  int
	name string
	pss  int64 // bytes
}

// procTree returns roots and every descendant of theirs (children of every
// thread, recursively), each once.
func procTree(roots ...int) []int {
	seen := map[int]bool{}
	var out []int
	for todo := roots; len(todo) > 0; {
		pid := todo[0]
		todo = todo[1:]
		if seen[pid] {
			continue
		}
		seen[pid] = true
		out = append(out, pid)
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
		for _, t := range tasks {
			b, _ := os.ReadFile(t)
			for _, f := range strings.Fields(string(b)) {
				if c, err := strconv.Atoi(f); err == nil {
					todo = append(todo, c)
				}
			}
		}
	}
	return out
}

// processes returns the Pss of each live process in pids; a process that
// has ended meanwhile, or a zombie (no smaps), is left out.
func processes(pids []int) []proc {
	var out []proc
	for _, pid := range pids {
		pss, err := pssOf(pid)
		if err != nil {
			continue
		}
		out = append(out, proc{pid: pid, name: procName(pid), pss: pss})
	}
	return out
}

// pssOf reads the Pss line of /proc/PID/smaps_rollup, in bytes.
func pssOf(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "Pss:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("pid %d: no Pss in smaps_rollup (a zombie?)", pid)
}

// procName names a process by its comm (systemd's own name, not the
// /sbin/init it was started as), except where argv[0] says more: acetate's
// helpers, re-executed through /proc/self/exe (comm "exe"), set it
// ("acetate-init"), and LXC's monitor rewrites it ("[lxc monitor] PATH
// NAME" becomes "[lxc monitor]"), and where comm is cut short.
func procName(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	arg0, _, _ := bytes.Cut(b, []byte{0})
	name := string(arg0)
	if i := strings.Index(name, "]"); strings.HasPrefix(name, "[") && i > 0 {
		return name[:i+1]
	}
	comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	c := strings.TrimSpace(string(comm))
	switch base := filepath.Base(name); {
	case name == "":
		return c
	case c == "exe":
		return base
	case len(c) == 15 && strings.HasPrefix(base, c):
		return base // comm is cut at 15 bytes: systemd-journal(d)
	}
	return c
}

// parentOf returns the parent pid of pid.
func parentOf(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// pid (comm) state ppid ...: comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if i < 0 || len(f) < 2 {
		return 0, fmt.Errorf("pid %d: bad stat %q", pid, b)
	}
	return strconv.Atoi(f[1])
}

// childrenOf returns the children of pid's main thread.
func childrenOf(pid int) []int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if c, err := strconv.Atoi(f); err == nil {
			out = append(out, c)
		}
	}
	return out
}

// inotifyInstances counts the inotify descriptors the processes pids hold.
func inotifyInstances(pids []int) int {
	n := 0
	for _, pid := range pids {
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		for _, fd := range fds {
			if l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); err == nil && l == "anon_inode:inotify" {
				n++
			}
		}
	}
	return n
}
