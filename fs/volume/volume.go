// Package volume keeps named volumes: directories in the store root
// (<root>/volumes/NAME/data) that containers mount (acetate run -v
// NAME:/path) and that outlive them. A volume is made by create, or by the
// first start of a container that names it, and removed only by an
// explicit remove, which is refused while a container's settings name it.
//
// A volume's data is the containers' and hostile, as an upper directory
// is: the host only measures it (internal/du, through descriptors) and
// removes it (internal/beneath), never follows a path into it.
//
//	<root>/volumes/NAME/
//	  volume.json  its name and creation time
//	  data/        what the containers see at the mount point
package volume

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/acetate/acetate/internal/beneath"
	"github.com/acetate/acetate/internal/du"
	"github.com/acetate/acetate/templates"
	"golang.org/x/sys/unix"
)

// ErrNotFound is wrapped when a volume does not exist.
var ErrNotFound = errors.New("no such volume")

// ErrExists is wrapped when creating a volume that exists.
var ErrExists = errors.New("volume exists")

// ErrInUse is wrapped when removing a volume that containers name.
var ErrInUse = errors.New("volume in use")

// Volume is one named volume.
type Volume struct {
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
	// Path is the host directory mounted in containers.
	Path string `json:"path"`
	// DiskBytes and Files are what the data holds (filled by Usage).
	DiskBytes int64 `json:"diskBytes"`
	Files     int   `json:"files"`
}

// Store is the volumes of one store root.
type Store struct{ dir string }

// Open returns the volumes of the store rooted at root.
func Open(root string) *Store { return &Store{dir: filepath.Join(root, "volumes")} }

// ValidateName checks a volume name: the rule of container and template
// names (lowercase letters and digits separated by single '.', '_' or
// '-'), so a name is never a path.
func ValidateName(name string) error {
	if _, err := templates.ParseRef(name); err != nil || strings.Contains(name, ":") {
		return fmt.Errorf("invalid volume name %q: use lowercase letters, digits and single '.', '_' or '-' between them", name)
	}
	return nil
}

// Create makes the volume name. It is staged under a temporary name and
// renamed into place, so a crash leaves no half-made volume under name.
func (s *Store) Create(name string) (*Volume, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, fmt.Errorf("create volume %s: %w", name, err)
	}
	tmp, err := os.MkdirTemp(s.dir, ".new-"+name+"-")
	if err != nil {
		return nil, fmt.Errorf("create volume %s: %w", name, err)
	}
	defer os.RemoveAll(tmp)
	v := &Volume{Name: name, Created: time.Now().UTC()}
	b, _ := json.Marshal(v)
	if err := os.Mkdir(filepath.Join(tmp, "data"), 0o755); err != nil {
		return nil, fmt.Errorf("create volume %s: %w", name, err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "volume.json"), b, 0o644); err != nil {
		return nil, fmt.Errorf("create volume %s: %w", name, err)
	}
	err = unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, filepath.Join(s.dir, name), unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EEXIST) {
		return nil, fmt.Errorf("%s: %w", name, ErrExists)
	}
	if err != nil {
		return nil, fmt.Errorf("create volume %s: %w", name, err)
	}
	v.Path = s.dataDir(name)
	return v, nil
}

// Ensure returns the volume name, made if it does not exist (as a start
// does for a volume a container names).
func (s *Store) Ensure(name string) (*Volume, error) {
	v, err := s.Get(name)
	if !errors.Is(err, ErrNotFound) {
		return v, err
	}
	v, err = s.Create(name)
	if errors.Is(err, ErrExists) { // made by another start meanwhile
		return s.Get(name)
	}
	return v, err
}

func (s *Store) dataDir(name string) string { return filepath.Join(s.dir, name, "data") }

// NameOf returns the name of the volume whose directory is dir, or "".
func (s *Store) NameOf(dir string) string {
	name, ok := strings.CutSuffix(strings.TrimPrefix(dir, s.dir+"/"), "/data")
	if !ok || ValidateName(name) != nil || s.dataDir(name) != dir {
		return ""
	}
	return name
}

// Get returns the volume name.
func (s *Store) Get(name string) (*Volume, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(s.dir, name, "volume.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("volume %s: %w", name, err)
	}
	var v Volume
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("volume %s: %w", name, err)
	}
	v.Name, v.Path = name, s.dataDir(name)
	return &v, nil
}

// List returns every volume, by name.
func (s *Store) List() ([]*Volume, error) {
	ents, err := os.ReadDir(s.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	var vs []*Volume
	for _, e := range ents {
		if ValidateName(e.Name()) != nil {
			continue // a staging directory
		}
		v, err := s.Get(e.Name())
		if err != nil {
			return nil, err
		}
		vs = append(vs, v)
	}
	return vs, nil
}

// Usage fills v's DiskBytes and Files.
func (v *Volume) Usage() {
	u := du.Tree(v.Path)
	v.DiskBytes, v.Files = u.Disk, u.Files
}

// Remove removes the volume name and its data, unless users (the
// containers whose settings name it) is not empty. The data is removed
// through descriptors, never following a link a container left there.
func (s *Store) Remove(name string, users []string) error {
	if _, err := s.Get(name); err != nil {
		return err
	}
	if len(users) > 0 {
		slices.Sort(users)
		return fmt.Errorf("%s: %w by %s (remove them first, or change their -v with acetate set)", name, ErrInUse, strings.Join(users, ", "))
	}
	// Renamed away first: a start that comes now finds no half-removed
	// volume under the name.
	gone := fmt.Sprintf("%s%s-%d-%d", removing, name, os.Getpid(), time.Now().UnixNano())
	if err := os.Rename(filepath.Join(s.dir, name), filepath.Join(s.dir, gone)); err != nil {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	fd, err := unix.Open(s.dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	defer unix.Close(fd)
	// What a remove killed before its end left is removed too.
	left, _ := filepath.Glob(filepath.Join(s.dir, removing+"*"))
	for _, l := range left {
		if err := beneath.Lend(fd, filepath.Base(l), nil).RemoveAll(); err != nil {
			return fmt.Errorf("remove volume %s: %w", name, err)
		}
	}
	return nil
}

// removing starts the name of a volume being removed.
const removing = ".rm-"

// Usage is what all volumes take.
type Usage struct {
	Volumes   int   `json:"volumes"`
	DiskBytes int64 `json:"diskBytes"`
}

// Usage measures every volume.
func (s *Store) Usage() (*Usage, error) {
	vs, err := s.List()
	if err != nil {
		return nil, err
	}
	u := &Usage{Volumes: len(vs)}
	for _, v := range vs {
		v.Usage()
		u.DiskBytes += v.DiskBytes
	}
	return u, nil
}
