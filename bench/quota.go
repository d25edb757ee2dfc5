package bench

import (
	"context"
	"fmt"

	"github.com/acetate/acetate/fs/container"
)

// quotaBytes is the disk quota of the quota scenario's containers: far
// above what a sample writes, so that only its cost shows.
const quotaBytes = 4 << 30

// quotaRounds is more than other scenarios take: the cost sought (a few
// per cent) is smaller than the noise of one sample on a shared machine.
const quotaRounds = 9

// benchQuota measures what a disk quota costs (its differences then live
// in a loop-mounted ext4 image): writing a file, synced, and untarring an
// archive into a container with a quota and into one without, under both
// drivers, each sample in a new container.
func benchQuota(e *env) error {
	a, err := e.acetate()
	if err != nil {
		return err
	}
	tpl, err := a.template(e, e.data.rootfs)
	if err != nil {
		return err
	}
	size := 256
	if e.opts.Quick {
		size = 32
	}
	// Unsynced, the write ends in the page cache of the image's ext4 as
	// of the store's; synced, it goes on through the loop device.
	for _, sync := range []string{"", "conv=fsync"} {
		write := func(dir string) error {
			return sh(fmt.Sprintf("dd if=/dev/zero of=%q bs=1M count=%d %s status=none", dir+"/written", size, sync))
		}
		name := fmt.Sprintf("write %d MiB (dd bs=1M)", size)
		if sync != "" {
			name = fmt.Sprintf("write %d MiB (dd bs=1M, synced)", size)
		}
		if err := e.interleave("quota", name, e.rounds(quotaRounds), quotaPeers(e, a, tpl, write)); err != nil {
			return err
		}
	}
	tarball, tarSize, err := e.untarData()
	if err != nil {
		return err
	}
	untar := func(dir string) error { return sh(fmt.Sprintf("tar -C %q -xf %q", dir, tarball)) }
	return e.interleave("quota", fmt.Sprintf("untar %d MiB into the container", tarSize>>20), e.rounds(quotaRounds), quotaPeers(e, a, tpl, untar))
}

// quotaPeers are the acetate drivers, each with and without a disk quota;
// each sample's setup removes the last sample's container and mounts a
// new one.
func quotaPeers(e *env, a *acetateStore, tpl string, work func(dir string) error) []peer {
	var peers []peer
	for _, driver := range []string{"overlay", "fuse"} {
		for _, disk := range []int64{0, quotaBytes} {
			name := "acetate " + driver + ", no quota"
			if disk > 0 {
				name = fmt.Sprintf("acetate %s, quota %d GiB", driver, disk>>30)
			}
			var ctr, dir string
			peers = append(peers, peer{name: name,
				missing: needs("mkfs.ext4", "resize2fs", "e2fsck"),
				setup: func() error {
					if ctr != "" {
						if err := a.m.Remove(ctr, true); err != nil {
							return err
						}
					}
					a.n++
					ctr = fmt.Sprintf("q%d", a.n)
					if _, err := a.m.Create(ctr, tpl, container.WithSettings(container.Settings{Disk: disk})); err != nil {
						return err
					}
					c, err := a.m.Mount(context.Background(), ctr, driver, "")
					if err != nil {
						return err
					}
					dir = c.Mount.Target
					return nil
				},
				run: func() error { return work(dir) }})
		}
	}
	return peers
}
