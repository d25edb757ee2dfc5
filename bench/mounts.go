package bench

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// target is one way of presenting a tree: a plain directory or some union
// mount of it. mount returns the directory to work in.
type target struct {
	name    string
	missing string
	mount   func(lower string) (string, error)
}

// unionTargets are the ways to serve lower as a container root that every
// read and write scenario compares.
func (e *env) unionTargets() []target {
	return append(e.acetateTargets(),
		target{name: "native dir", mount: func(lower string) (string, error) { return lower, nil }},
		target{name: "kernel overlayfs", mount: e.kernelOverlay},
		target{name: "fuse-overlayfs", missing: needs("fuse-overlayfs"), mount: e.fuseOverlayfs},
	)
}

// layerDirs makes an upper, work and mount point directory.
func (e *env) layerDirs() (upper, work, mnt string) {
	d := e.dir("union")
	upper, work, mnt = filepath.Join(d, "upper"), filepath.Join(d, "work"), filepath.Join(d, "mnt")
	for _, p := range []string{upper, work, mnt} {
		os.Mkdir(p, 0o755)
	}
	return upper, work, mnt
}

// kernelOverlay mounts plain kernel overlayfs with lower as its only lower
// layer and a fresh upper directory, unmounted at the end of the run.
func (e *env) kernelOverlay(lower string) (string, error) {
	mnt, err := e.ownOverlay(lower)
	if err == nil {
		e.mounted(mnt)
	}
	return mnt, err
}

// ownOverlay mounts kernel overlayfs as kernelOverlay does, for the caller
// to unmount; the upper, work and mount point directories share a parent
// directory, filepath.Dir(mnt).
func (e *env) ownOverlay(lower string) (string, error) {
	upper, work, mnt := e.layerDirs()
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work)
	if err := unix.Mount("overlay", mnt, "overlay", 0, opts); err != nil {
		return "", fmt.Errorf("mount overlay: %w", err)
	}
	return mnt, nil
}

// fuseOverlayfs mounts fuse-overlayfs over the same layers.
func (e *env) fuseOverlayfs(lower string) (string, error) {
	upper, work, mnt := e.layerDirs()
	if err := sh(fmt.Sprintf("fuse-overlayfs -o lowerdir=%s,upperdir=%s,workdir=%s %s", lower, upper, work, mnt)); err != nil {
		return "", err
	}
	e.mounted(mnt)
	return mnt, nil
}

// mountAll mounts every target over lower; a target that fails to mount
// is reported as missing with the error.
func (e *env) mountAll(targets []target, lower string) map[string]string {
	dirs := map[string]string{}
	for i, t := range targets {
		if t.missing != "" {
			continue
		}
		dir, err := t.mount(lower)
		if err != nil {
			targets[i].missing = "mount failed: " + firstLine(err.Error())
			continue
		}
		dirs[t.name] = dir
	}
	return dirs
}
