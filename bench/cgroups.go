package bench

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// cgroupRoot is where the host's cgroup hierarchies are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// systemdHierarchies are the hierarchies a booting systemd (and so
// systemd-nspawn) uses: on a cgroup2-only host the one at /sys/fs/cgroup;
// on a hybrid host the v1 name=systemd one and cgroup2 at "unified".
func systemdHierarchies() []string {
	var sfs unix.Statfs_t
	if unix.Statfs(cgroupRoot, &sfs) == nil && sfs.Type == unix.CGROUP2_SUPER_MAGIC {
		return []string{cgroupRoot}
	}
	var out []string
	for _, h := range []string{"systemd", "unified"} {
		if _, err := os.Stat(filepath.Join(cgroupRoot, h, "cgroup.procs")); err == nil {
			out = append(out, filepath.Join(cgroupRoot, h))
		}
	}
	return out
}

// ownCgroup makes a cgroup named name at the root of every hierarchy
// systemd uses, for one systemd-nspawn instance (with --keep-unit it
// manages the cgroup it is started in, and two instances must not share
// one). It returns the directories.
func ownCgroup(name string) ([]string, error) {
	var dirs []string
	for _, h := range systemdHierarchies() {
		d := filepath.Join(h, name)
		if err := os.Mkdir(d, 0o755); err != nil {
			removeCgroups(dirs)
			return nil, fmt.Errorf("cgroup for nspawn: %w", err)
		}
		dirs = append(dirs, d)
	}
	if len(dirs) == 0 {
		return nil, errors.New("cgroup for nspawn: neither a cgroup2 nor a name=systemd hierarchy is mounted")
	}
	return dirs, nil
}

// removeCgroups kills every process left in the cgroups dirs (through
// cgroup.kill where the kernel has it, else SIGKILL to each) and removes
// them with everything below, deepest first. Errors are left out: this
// runs at the end, to leave the host as it was, and does what it can.
func removeCgroups(dirs []string) {
	for _, d := range dirs {
		if err := os.WriteFile(filepath.Join(d, "cgroup.kill"), []byte("1"), 0); err != nil {
			killCgroupProcs(d)
		}
	}
	for _, d := range dirs {
		var sub []string
		filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				sub = append(sub, p)
			}
			return nil
		})
		slices.Reverse(sub) // children after their parent in a walk
		for _, p := range sub {
			// The killed processes leave the cgroup as they are reaped.
			for try := 0; try < 100 && rmdirBusy(p); try++ {
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
}

// rmdirBusy removes a cgroup directory and reports whether it is still
// in use (EBUSY).
func rmdirBusy(p string) bool {
	return errors.Is(unix.Rmdir(p), unix.EBUSY)
}

// killCgroupProcs sends SIGKILL to every process in the cgroup d and below.
func killCgroupProcs(d string) {
	filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.Name() != "cgroup.procs" {
			return nil
		}
		b, _ := os.ReadFile(p)
		for _, f := range strings.Fields(string(b)) {
			var pid int
			if _, err := fmt.Sscan(f, &pid); err == nil && pid > 0 {
				unix.Kill(pid, unix.SIGKILL)
			}
		}
		return nil
	})
}

// cgroupsNamed returns the cgroup directories at the root of every
// hierarchy whose name is one of names.
func cgroupsNamed(names ...string) []string {
	var out []string
	for _, n := range names {
		m, _ := filepath.Glob(filepath.Join(cgroupRoot, n))
		out = append(out, m...)
		m, _ = filepath.Glob(filepath.Join(cgroupRoot, "*", n))
		out = append(out, m...)
	}
	return out
}

// storeCgroups returns the directories, in every hierarchy, of the cgroup
// acetate makes the containers of a store in (acetate/STORE), read from
// the cgroups the kernel shows for the processes of one of them, whose
// init is pid (the init itself may be outside: its command's processes
// are in); none when no process of the tree is in such a cgroup.
func storeCgroups(pid int) []string {
	for _, p := range procTree(pid) {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", p))
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.SplitN(line, ":", 3) // ID:CONTROLLERS:/acetate/STORE/NAME...
			if len(f) < 3 {
				continue
			}
			if parts := strings.Split(strings.TrimPrefix(f[2], "/"), "/"); len(parts) > 2 && parts[0] == "acetate" {
				return cgroupsNamed(filepath.Join(parts[0], parts[1]))
			}
		}
	}
	return nil
}

// removeEmptyCgroups removes the cgroup directories dirs where they are
// empty, waiting a little for one whose last process is being reaped;
// rmdir refuses a cgroup with processes or children (EBUSY), so another
// store's running containers keep theirs.
func removeEmptyCgroups(dirs []string) {
	for _, d := range dirs {
		for try := 0; try < 50 && rmdirBusy(d); try++ {
			time.Sleep(10 * time.Millisecond)
		}
	}
}
