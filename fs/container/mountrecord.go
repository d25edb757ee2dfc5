package container

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// mountRecord, in the container's directory, says where and by which
// driver the container is mounted, while it is: a symbolic link whose
// target is the record, the JSON of its MountState, the target left empty
// for the default mount point (rootfs/). ext4 keeps a link of up to 59
// bytes in its inode (a fast symlink), so the record of a mount at the
// default mount point takes no block of the disk, where a file took one
// per mounted container. The link is read, never followed.
//
// It is not synced: after a power loss no mount is left, and a record cut
// short counts as none, one left over is cleaned up as stale (clearStale).
const mountRecord = "mounted"

// oldMountRecord is the file the layout before this one kept the record
// in: a container mounted by an older acetate is read from it.
const oldMountRecord = "state.json"

// writeMountRecord records ms as the mount of the container whose
// directory is dir.
func writeMountRecord(dir string, ms *MountState) error {
	rec := *ms
	if rec.Target == filepath.Join(dir, rootfsDir) {
		rec.Target = ""
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	// Only a record left by a crash is there: the caller holds the
	// container's lock, and a live mount has been refused.
	if err := removeMountRecord(dir); err != nil {
		return err
	}
	if err := os.Symlink(string(b), filepath.Join(dir, mountRecord)); err != nil {
		return fmt.Errorf("record the mount: %w", err)
	}
	return nil
}

// readMountRecord returns the mount recorded for the container whose
// directory is dir, nil for none or a record that does not parse.
func readMountRecord(dir string) *MountState {
	var b []byte
	if s, err := os.Readlink(filepath.Join(dir, mountRecord)); err == nil {
		b = []byte(s)
	} else if b, err = os.ReadFile(filepath.Join(dir, oldMountRecord)); err != nil {
		return nil
	}
	var ms *MountState
	if json.Unmarshal(b, &ms) != nil || ms == nil {
		return nil
	}
	if ms.Target == "" {
		ms.Target = filepath.Join(dir, rootfsDir)
	}
	return ms
}

// removeMountRecord removes the record of the container whose directory
// is dir, in either layout.
func removeMountRecord(dir string) error {
	for _, name := range []string{mountRecord, oldMountRecord} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove the mount record: %w", err)
		}
	}
	return nil
}
