// Package atomicfile replaces files whole: it writes a temporary file
// beside the target and renames it over the target, so that a reader, or
// a crash of the writer, finds the old content or the new, never part of
// either.
package atomicfile

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
)

// Write replaces the file at path (mode 0600) with what write writes. With
// sync, the data reaches the disk before the rename, so that after a power
// loss too the file holds one content or the other once the rename is
// durable (see SyncDir). On error the file at path is left as it was.
func Write(path string, sync bool, write func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // fails once renamed
	err = write(f)
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// WriteFile replaces the file at path with data, as Write does.
func WriteFile(path string, data []byte, sync bool) error {
	return Write(path, sync, func(w io.Writer) error {
		_, err := io.Copy(w, bytes.NewReader(data))
		return err
	})
}

// SyncDir flushes directory dir, so that the names made or renamed in it
// survive a power loss.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
