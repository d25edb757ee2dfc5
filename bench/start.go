package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"

	"github.com/acetate/acetate/runtime"
	"golang.org/x/sys/unix"
)

// benchStart measures start-to-exit of /bin/true in a created acetate
// container (overlay driver), every peer using the same mounted root: the
// acetate launcher against bwrap, crun, runc and unshare+chroot.
func benchStart(e *env) error {
	root, trueBin, err := e.trueRoot()
	if err != nil {
		return err
	}
	n := 0
	ociRun := func(tool string, flags ...string) (peer, error) {
		p := peer{name: tool, missing: needs(tool)}
		if p.missing != "" {
			return p, nil
		}
		bundle, err := ociBundle(e, root, trueBin)
		if err != nil {
			return p, err
		}
		p.run = func() error {
			n++
			args := append(append([]string{}, flags...), "run", "--bundle", bundle, fmt.Sprintf("acetate-bench-%d", n))
			return run(tool, args...)
		}
		return p, nil
	}
	crun, err := ociRun("crun", "--cgroup-manager=disabled")
	if err != nil {
		return err
	}
	if crun.missing == "" {
		// crun refuses hybrid cgroup hosts like this one unless it sees a
		// private cgroup2 mount; give it one without timing an extra process.
		inNS, err := privateCgroup2(e)
		if err != nil {
			return err
		}
		plain := crun.run
		crun.run = func() error { return inNS(plain) }
	}
	runc, err := ociRun("runc")
	if err != nil {
		return err
	}
	peers := []peer{
		{name: "acetate run", run: func() error {
			code, err := runtime.Run(e.ctx, runtime.Spec{Rootfs: root, Args: []string{trueBin}})
			if err == nil && code != 0 {
				err = fmt.Errorf("exit %d", code)
			}
			return err
		}},
		{name: "bwrap", missing: needs("bwrap"), run: func() error {
			return run("bwrap", "--bind", root, "/", "--proc", "/proc", "--dev", "/dev", "--unshare-all", trueBin)
		}},
		crun, runc,
		{name: "unshare+chroot", missing: needs("unshare", "chroot"), run: func() error {
			return run("unshare", "--mount", "--uts", "--ipc", "--pid", "--fork", "chroot", root, trueBin)
		}},
	}
	return e.interleave("start", "start-to-exit of /bin/true", e.rounds(50)*2, peers)
}

// trueRoot mounts an acetate container of the dataset's rootfs (overlay
// driver) and returns its root and the path of true(1) in it.
func (e *env) trueRoot() (root, trueBin string, err error) {
	a, err := e.acetate()
	if err != nil {
		return "", "", err
	}
	if root, err = a.mount(e, e.data.rootfs, "overlay"); err != nil {
		return "", "", err
	}
	trueBin = "/bin/true"
	if _, err := os.Stat(filepath.Join(root, "usr/bin/true")); err == nil {
		trueBin = "/usr/bin/true"
	}
	return root, trueBin, nil
}

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", name, err, firstLine(string(out)))
	}
	return nil
}

// ociBundle writes an OCI runtime bundle whose root is root and whose
// process is /bin/true, from the tool's own default spec.
func ociBundle(e *env, root, trueBin string) (string, error) {
	bundle := e.dir("bundle")
	cmd := exec.Command("runc", "spec")
	if _, err := exec.LookPath("runc"); err != nil {
		cmd = exec.Command("crun", "spec")
	}
	cmd.Dir = bundle
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("oci spec: %w: %s", err, out)
	}
	p := filepath.Join(bundle, "config.json")
	b, err := os.ReadFile(p)
	if err != nil {
		return "", err
	}
	var spec map[string]any
	if err := json.Unmarshal(b, &spec); err != nil {
		return "", err
	}
	spec["root"] = map[string]any{"path": root, "readonly": false}
	proc := spec["process"].(map[string]any)
	proc["terminal"] = false
	proc["args"] = []string{trueBin}
	b, err = json.Marshal(spec)
	if err != nil {
		return "", err
	}
	return bundle, os.WriteFile(p, b, 0o644)
}

// privateCgroup2 starts a goroutine locked to an OS thread that has its own
// mount namespace, with everything private and a cgroup2 filesystem on
// /sys/fs/cgroup, and returns a function that runs f on that thread, so the
// processes f starts inherit that namespace.
func privateCgroup2(e *env) (func(f func() error) error, error) {
	jobs := make(chan func() error)
	results := make(chan error)
	ready := make(chan error)
	go func() {
		goruntime.LockOSThread() // never unlocked: the thread dies with the goroutine
		err := unix.Unshare(unix.CLONE_NEWNS)
		if err == nil {
			err = unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, "")
		}
		if err == nil {
			err = unix.Mount("cgroup2", "/sys/fs/cgroup", "cgroup2", 0, "")
		}
		ready <- err
		if err != nil {
			return
		}
		for f := range jobs {
			results <- f()
		}
	}()
	if err := <-ready; err != nil {
		return nil, fmt.Errorf("private cgroup2 mount for crun: %w", err)
	}
	e.onCleanup(func() { close(jobs) })
	return func(f func() error) error {
		jobs <- f
		return <-results
	}, nil
}
