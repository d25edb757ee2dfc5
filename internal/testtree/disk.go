package testtree

import (
	"os"
	"os/exec"
	"testing"
)

// RequireDiskImages skips the test without what disk images need: root,
// the loop driver and e2fsprogs.
func RequireDiskImages(t testing.TB) {
	t.Helper()
	RequireRoot(t)
	for _, tool := range []string{"mkfs.ext4", "resize2fs", "e2fsck", "losetup"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (e2fsprogs, util-linux)", tool)
		}
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		t.Skipf("no loop driver: %v", err)
	}
}

// Fill appends to file p in synced 1 MiB writes until one fails, and
// returns the bytes written and that error: how a test fills a quota.
func Fill(p string) (int64, error) {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	var n int64
	for {
		w, err := f.Write(buf)
		n += int64(w)
		if err == nil {
			err = f.Sync()
		}
		if err != nil {
			return n, err
		}
	}
}
