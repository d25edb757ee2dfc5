package templates

import (
	"os"
	"path/filepath"

	"github.com/acetate/acetate/internal/du"

	"github.com/acetate/acetate/layers"
	"github.com/opencontainers/go-digest"
)

// Inspection describes one template and what it costs on disk.
type Inspection struct {
	*Template
	// Files counts every entry of the merged tree but directories.
	Files int `json:"files"`
	// Dirs counts directories.
	Dirs int `json:"dirs"`
	// LogicalBytes is the sum of the sizes of its regular files, counting
	// each hardlinked file once: what a full copy would hold.
	LogicalBytes int64 `json:"logicalBytes"`
	// UniqueBytes is disk used by objects no other template uses.
	UniqueBytes int64 `json:"uniqueBytes"`
	// SharedBytes is disk used by objects other templates use too.
	SharedBytes int64 `json:"sharedBytes"`
}

// Inspect describes t, comparing its objects with every other template's.
func (s *Store) Inspect(t *Template) (*Inspection, error) {
	all, err := s.List()
	if err != nil {
		return nil, err
	}
	mine, entries, err := s.objectsOf(t)
	if err != nil {
		return nil, err
	}
	in := &Inspection{Template: t}
	for i := range entries {
		e := &entries[i]
		switch {
		case e.Type == layers.TypeDir:
			in.Dirs++
		case e.Type == layers.TypeReg && e.LinkTo == "":
			in.LogicalBytes += e.Size
			in.Files++
		default:
			in.Files++
		}
	}
	others := map[digest.Digest]bool{}
	for _, o := range all {
		if o.Ref == t.Ref || sameStack(o, t) {
			continue
		}
		objs, _, err := s.objectsOf(o)
		if err != nil {
			return nil, err
		}
		for d := range objs {
			others[d] = true
		}
	}
	c := du.NewCounter()
	for d := range mine {
		if others[d] {
			in.SharedBytes += c.File(s.Layers.ObjectFile(d))
		} else {
			in.UniqueBytes += c.File(s.Layers.ObjectFile(d))
		}
	}
	return in, nil
}

func sameStack(a, b *Template) bool {
	if len(a.Layers) != len(b.Layers) {
		return false
	}
	for i := range a.Layers {
		if a.Layers[i] != b.Layers[i] {
			return false
		}
	}
	return true
}

// objectsOf returns the set of objects t's merged tree uses, and that tree.
func (s *Store) objectsOf(t *Template) (map[digest.Digest]bool, []layers.Entry, error) {
	entries, err := s.Entries(t)
	if err != nil {
		return nil, nil, err
	}
	objs := map[digest.Digest]bool{}
	for i := range entries {
		if entries[i].Type == layers.TypeReg {
			objs[entries[i].Digest] = true
		}
	}
	return objs, entries, nil
}

// Usage is the store's use of disk.
type Usage struct {
	Templates int `json:"templates"`
	// LogicalBytes is what every template would take as a full copy.
	LogicalBytes int64 `json:"logicalBytes"`
	// ObjectBytes, LayerBytes are the disk really used by file objects and
	// by layer manifests (and metadata trees).
	ObjectBytes int64 `json:"objectBytes"`
	LayerBytes  int64 `json:"layerBytes"`
	// DiskBytes is ObjectBytes + LayerBytes.
	DiskBytes int64 `json:"diskBytes"`
	Objects   int   `json:"objects"`
	Layers    int   `json:"layers"`
	// Savings is LogicalBytes / DiskBytes.
	Savings float64 `json:"savings"`
	// TempBytes is the disk used by the TempFiles entries of tmp/: what
	// running writers stage, or what interrupted ones left (gc removes
	// it). Not in DiskBytes.
	TempBytes int64 `json:"tempBytes"`
	TempFiles int   `json:"tempFiles"`
}

// DiskUsage measures the store.
func (s *Store) DiskUsage() (*Usage, error) {
	all, err := s.List()
	if err != nil {
		return nil, err
	}
	u := &Usage{Templates: len(all)}
	for _, t := range all {
		in, err := s.LogicalBytes(t.Layers)
		if err != nil {
			return nil, err
		}
		u.LogicalBytes += in
	}
	// The layers' data directories name objects: count those once.
	c := du.NewCounter()
	objects := c.Tree(s.Layers.ObjectsDir())
	u.ObjectBytes, u.Objects = objects.Disk, objects.Files
	u.LayerBytes = c.Tree(s.Layers.LayersDir()).Disk
	ls, _ := os.ReadDir(s.Layers.LayersDir())
	u.Layers = len(ls)
	u.DiskBytes = u.ObjectBytes + u.LayerBytes
	// Each entry of tmp/, not tmp/ itself: a directory keeps the blocks
	// its largest listing needed.
	tmp, _ := os.ReadDir(s.Layers.TmpDir())
	u.TempFiles = len(tmp)
	for _, e := range tmp {
		u.TempBytes += c.Tree(filepath.Join(s.Layers.TmpDir(), e.Name())).Disk
	}
	if u.DiskBytes > 0 {
		u.Savings = float64(u.LogicalBytes) / float64(u.DiskBytes)
	}
	return u, nil
}

// LogicalBytes is what a full copy of the stack's merged tree holds: the
// sizes of its regular files, each hardlinked file counted once.
func (s *Store) LogicalBytes(stack []digest.Digest) (int64, error) {
	ms, err := s.manifests(stack)
	if err != nil {
		return 0, err
	}
	entries := layers.Merge(ms)
	var n int64
	for i := range entries {
		if entries[i].Type == layers.TypeReg && entries[i].LinkTo == "" {
			n += entries[i].Size
		}
	}
	return n, nil
}
