package bench

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/acetate/acetate/fs/container"
	"github.com/acetate/acetate/internal/du"
)

// snapshotChange is what the container writes between two snapshots.
const snapshotChange = 1 << 20

// benchSnapshot measures a snapshot of a container that changes 1 MB between
// snapshots (on top of a few MB of earlier differences), and restoring one,
// side by side with what an admin does without acetate: cp -a or tar of the
// container's whole root, and cp -a --reflink=auto of an overlay upper
// directory (a copy on filesystems without reflinks). Time per snapshot and
// restore, and disk per snapshot.
func benchSnapshot(e *env) error {
	a, err := e.acetate()
	if err != nil {
		return err
	}
	name, root, err := a.mountNew(e, e.data.rootfs, "overlay")
	if err != nil {
		return err
	}
	up := a.m.UpperDir(name)
	k, changes := 0, 0
	change := func() error {
		changes++
		return writeRandom(filepath.Join(root, fmt.Sprintf("srv/change-%d", changes%4)), snapshotChange)
	}
	if err := os.MkdirAll(filepath.Join(root, "srv"), 0o755); err != nil {
		return err
	}
	for i := range 4 { // the differences a snapshot carries along
		if err := writeRandom(filepath.Join(root, fmt.Sprintf("srv/kept-%d", i)), snapshotChange); err != nil {
			return err
		}
	}
	copies := e.dir("snapshot-copies")
	n := e.rounds(10)
	// A first snapshot stores the earlier differences; the measured ones
	// each add what changed since the one before.
	if _, err := a.m.CreateSnapshot(e.ctx, name, "base", container.SnapshotOptions{}); err != nil {
		return err
	}
	var snaps []string
	// The store's growth: objects and layers (not the container's own
	// upper directory, which the store root holds too).
	storeDisk := func() int64 { return du.Tree(a.st.Layers.ObjectsDir()).Disk + du.Tree(a.st.Layers.LayersDir()).Disk }
	storeBefore := storeDisk()
	// Each copy peer keeps its last copy (for restore) and its size.
	type copied struct {
		last string
		size int64
	}
	var cp, tarred, upper copied
	copyPeer := func(tool, script string, c *copied) peer {
		return peer{name: tool, missing: needs("cp", "tar"), setup: func() error { return os.RemoveAll(c.last) }, run: func() error {
			k++
			dst := filepath.Join(copies, fmt.Sprintf("copy-%d", k))
			if err := sh(fmt.Sprintf(script, root, up, dst)); err != nil {
				return err
			}
			c.last, c.size = dst, du.Tree(dst).Disk
			return nil
		}}
	}
	err = e.interleave("snapshot", "create (1 MB changed since the last)", n, []peer{
		{name: "acetate snapshot create", setup: change, run: func() error {
			s, err := a.m.CreateSnapshot(e.ctx, name, fmt.Sprintf("s%d", changes), container.SnapshotOptions{})
			if err == nil {
				snaps = append(snaps, s.Name)
			}
			return err
		}},
		copyPeer("cp -a of the root", "cp -a %[1]q %[3]q", &cp),
		copyPeer("tar of the root", "mkdir %[3]q && tar -C %[1]q -cf %[3]q/root.tar .", &tarred),
		copyPeer("cp -a --reflink=auto of the upper dir", "cp -a --reflink=auto %[2]q %[3]q", &upper),
	})
	if err != nil {
		return err
	}
	perSnapshot := float64(storeDisk()-storeBefore) / float64(max(len(snaps), 1))
	for _, f := range []struct {
		tool string
		v    float64
	}{{"acetate snapshot create", perSnapshot}, {"cp -a of the root", float64(cp.size)},
		{"tar of the root", float64(tarred.size)}, {"cp -a --reflink=auto of the upper dir", float64(upper.size)}} {
		e.report.add(newFigure("snapshot", "disk per snapshot", f.tool, "B", []float64{f.v}))
	}
	if err := a.m.Unmount(name); err != nil {
		return err
	}
	if len(snaps) == 0 {
		return fmt.Errorf("no snapshot was taken")
	}
	last := snaps[len(snaps)-1]
	restorePeer := func(tool, script, from string) peer {
		return peer{name: tool, missing: needs("cp", "tar"), run: func() error {
			k++
			return sh(fmt.Sprintf(script, from, filepath.Join(copies, fmt.Sprintf("restore-%d", k))))
		}}
	}
	return e.interleave("snapshot", "restore", e.rounds(5), []peer{
		{name: "acetate snapshot restore", run: func() error { return a.m.RestoreSnapshot(e.ctx, name, last, nil) }},
		restorePeer("cp -a of the root", "cp -a %q %q", cp.last),
		restorePeer("tar of the root", "mkdir %[2]q && tar -C %[2]q -xf %[1]q", filepath.Join(tarred.last, "root.tar")),
		restorePeer("cp -a --reflink=auto of the upper dir", "cp -a --reflink=auto %q %q", upper.last),
	})
}

// writeRandom writes size bytes of random content to the new file path.
func writeRandom(path string, size int) error {
	buf := make([]byte, size)
	for i := range buf {
		buf[i] = byte(rand.Uint32())
	}
	return os.WriteFile(path, buf, 0o644)
}
