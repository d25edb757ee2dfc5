package bench

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// benchWrite measures copy-up (append one byte to many template files, each
// sample on a fresh mount) and untarring a large archive into a container,
// on every union target.
func benchWrite(e *env) error {
	files := templateFiles(e.data.rootfs, 1000, 1<<62)
	if e.opts.Quick {
		files = files[:min(len(files), 100)]
	}
	targets := e.unionTargets()[:0]
	for _, t := range e.unionTargets() {
		if t.name != "native dir" {
			targets = append(targets, t)
		}
	}
	copyUp := fmt.Sprintf("append 1 byte to %d template files (copy-up)", len(files))
	if err := e.interleave("write", copyUp, e.rounds(5), freshMountPeers(e, targets, func(dir string) error {
		return appendByte(dir, files)
	})); err != nil {
		return err
	}
	// Every created file costs a FUSE server several synchronous requests
	// (see roundTrips), so untar's cost is bounded by this row's.
	if err := e.interleave("write", fmt.Sprintf("%d getxattr calls, one request each", roundTrips), e.rounds(5),
		freshMountPeers(e, targets, func(dir string) error { return missingXattr(filepath.Join(dir, files[0])) })); err != nil {
		return err
	}
	tarball, size, err := e.untarData()
	if err != nil {
		return err
	}
	untar := fmt.Sprintf("untar %d MiB into the container", size>>20)
	return e.interleave("write", untar, e.rounds(5), freshMountPeers(e, targets, func(dir string) error {
		return sh(fmt.Sprintf("tar -C %q -xf %q", dir, tarball))
	}))
}

// freshMountPeers makes one peer per target whose every sample works on a
// new mount (made untimed in setup).
func freshMountPeers(e *env, targets []target, work func(dir string) error) []peer {
	var peers []peer
	for _, t := range targets {
		var dir string
		peers = append(peers, peer{name: t.name, missing: t.missing,
			setup: func() (err error) {
				dir, err = t.mount(e.data.rootfs)
				return err
			},
			run: func() error { return work(dir) }})
	}
	return peers
}

// templateFiles lists up to n writable regular files of the tree of at
// most maxSize bytes, as relative paths.
func templateFiles(root string, n int, maxSize int64) []string {
	var files []string
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() && len(files) < n && fi.Mode()&0o200 != 0 && fi.Size() <= maxSize {
			rel, _ := filepath.Rel(root, p)
			files = append(files, rel)
		}
		return nil
	})
	return files
}

func appendByte(dir string, files []string) error {
	for _, f := range files {
		fh, err := os.OpenFile(filepath.Join(dir, f), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return err
		}
		_, err = fh.Write([]byte{'\n'})
		if cerr := fh.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// roundTrips is how many requests the round-trip row makes; its time in
// milliseconds divided by 10 is the time of one request in microseconds.
//
// GNU tar makes each file with openat(O_CREAT|O_EXCL), write, utimensat,
// fchown and fchmod; on a FUSE mount with default_permissions the kernel
// turns these into seven synchronous requests whatever the server does:
// GETATTR of the parent (its attributes were invalidated by the last
// create), LOOKUP, CREATE, GETXATTR security.capability (first write),
// SETATTR, GETXATTR security.capability (chown may drop capabilities),
// SETATTR, SETATTR; RELEASE is sent in the background. Seen with the
// fuse:fuse_request_send tracepoint.
const roundTrips = 10000

// missingXattr asks for an xattr p does not have, roundTrips times. The
// kernel caches no xattrs of a FUSE file, so each call is one request.
func missingXattr(p string) error {
	buf := make([]byte, 64)
	for range roundTrips {
		if _, err := unix.Lgetxattr(p, "user.acetate-bench.none", buf); err != unix.ENODATA {
			return fmt.Errorf("getxattr %s: %v, want ENODATA", p, err)
		}
	}
	return nil
}

// untarData makes a tarball of several thousand files, about 100 MiB
// (10 MiB with --quick), into a new directory "untar-data".
func (e *env) untarData() (string, int64, error) {
	src := filepath.Join(e.dir("untar-src"), "untar-data")
	n := 6000
	if e.opts.Quick {
		n = 600
	}
	if err := generateTree(src, n, 3); err != nil {
		return "", 0, err
	}
	tarball := filepath.Join(e.dir("untar"), "data.tar")
	if err := sh(fmt.Sprintf("tar -C %q -cf %q untar-data", filepath.Dir(src), tarball)); err != nil {
		return "", 0, err
	}
	fi, err := os.Stat(tarball)
	if err != nil {
		return "", 0, err
	}
	return tarball, fi.Size(), nil
}
