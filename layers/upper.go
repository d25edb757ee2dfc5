package layers

import (
	"context"
	"fmt"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// EntryAt describes the file at abs, named rel in a tree, as ReadDir would:
// type, mode, owner, mtime, size, xattrs, symlink target and device numbers.
// The content digest and hardlink grouping are left for the caller.
func EntryAt(abs, rel string) (Entry, error) {
	var st unix.Stat_t
	if err := unix.Lstat(abs, &st); err != nil {
		return Entry{}, fmt.Errorf("source %s: %w", abs, err)
	}
	return entryFromStat(abs, rel, &st)
}

// ReadFiles stages the content of every regular file of m that has no
// digest yet and is not a hardlink (LinkTo empty), reading it from dir
// joined with its path; hardlink members then take their leader's digest.
// It returns the tree of m, for Commit or Abort. The caller holds the
// store's shared lock, as for ReadDir.
func (s *Store) ReadFiles(ctx context.Context, dir string, m *Manifest, p Progress) (*Tree, error) {
	p = orNoProgress(p)
	var files []int
	var total int64
	for i := range m.Entries {
		if e := &m.Entries[i]; e.Type == TypeReg && e.Digest == "" && e.LinkTo == "" {
			files = append(files, i)
			total += e.Size
		}
	}
	p.Total(total)
	t := &Tree{Manifest: m, st: s.newStaging()}
	if err := t.ingestFiles(ctx, filepath.Clean(dir), files, p); err != nil {
		t.Abort()
		return nil, err
	}
	leaders := map[string]*Entry{}
	for i := range m.Entries {
		e := &m.Entries[i]
		if e.Type == TypeReg && e.LinkTo == "" {
			leaders[e.Path] = e
		}
	}
	for i := range m.Entries {
		e := &m.Entries[i]
		if e.LinkTo == "" {
			continue
		}
		l, ok := leaders[e.LinkTo]
		if !ok {
			t.Abort()
			return nil, fmt.Errorf("entry %s: hardlink leader %s is not a regular file of this layer", e.Path, e.LinkTo)
		}
		e.Digest, e.Size = l.Digest, l.Size
	}
	return t, nil
}
