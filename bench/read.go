package bench

import (
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// benchRead measures, on every union target: sequential read of a large
// template file (warm and cold cache), random 4 KiB reads of it, and a stat
// walk of the whole rootfs (warm and cold).
func benchRead(e *env) error {
	lower := e.dir("read-lower")
	if err := sh(fmt.Sprintf("cp -al %q/. %q/", e.data.noDev, lower)); err != nil {
		return err
	}
	size := int64(1 << 30)
	if e.opts.Quick {
		size = 64 << 20
	}
	if err := writeRandomFile(filepath.Join(lower, "big"), size); err != nil {
		return err
	}
	targets := e.unionTargets()
	dirs := e.mountAll(targets, lower)
	bigName := fmt.Sprintf("big (%d MiB)", size>>20)
	cases := []struct {
		name  string
		cold  bool
		work  func(dir string) error
		round int
	}{
		{"sequential read " + bigName + ", warm", false, func(d string) error { return readAll(filepath.Join(d, "big")) }, 5},
		{"sequential read " + bigName + ", cold", true, func(d string) error { return readAll(filepath.Join(d, "big")) }, 5},
		{"2000 random 4 KiB reads, warm", false, func(d string) error { return randomReads(filepath.Join(d, "big"), 2000) }, 5},
		{"stat walk of the rootfs, warm", false, statWalk, 5},
		{"stat walk of the rootfs, cold", true, statWalk, 7},
	}
	for _, c := range cases {
		var peers []peer
		for _, t := range targets {
			dir := dirs[t.name]
			p := peer{name: t.name, missing: t.missing, run: func() error { return c.work(dir) }}
			switch {
			case c.cold && !e.opts.DropCaches:
				p.missing = noDropReason
			case c.cold:
				p.setup = dropCaches
			case t.missing == "":
				c.work(dir) // warm the cache before the first timed run
			}
			peers = append(peers, p)
		}
		if err := e.interleave("read", c.name, e.rounds(c.round), peers); err != nil {
			return err
		}
	}
	return nil
}

func writeRandomFile(p string, size int64) error {
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	defer f.Close()
	rng := rand.New(rand.NewPCG(7, 7))
	buf := make([]byte, 1<<20)
	for n := int64(0); n < size; n += int64(len(buf)) {
		for i := 0; i < len(buf); i += 8 {
			v := rng.Uint64()
			for j := range 8 {
				buf[i+j] = byte(v >> (8 * j))
			}
		}
		if _, err := f.Write(buf); err != nil {
			return err
		}
	}
	return f.Sync()
}

func readAll(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.CopyBuffer(io.Discard, struct{ io.Reader }{f}, make([]byte, 1<<20))
	return err
}

func randomReads(p string, n int) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	blocks := fi.Size() / 4096
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 4096)
	for range n {
		if _, err := f.ReadAt(buf, rng.Int64N(blocks)*4096); err != nil {
			return err
		}
	}
	return nil
}

// statWalk lstats every entry below dir, as find does.
func statWalk(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		return unix.Lstat(p, &st)
	})
}
