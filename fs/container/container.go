package container

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/acetate/acetate/internal/atomicfile"
	"github.com/acetate/acetate/internal/flock"
	"github.com/acetate/acetate/templates"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// Errors wrapped by what the Manager returns.
var (
	// ErrNotFound: the named container does not exist.
	ErrNotFound = errors.New("container not found")
	// ErrExists: a container of that name exists already.
	ErrExists = errors.New("container exists")
	// ErrMounted: the operation needs the container unmounted.
	ErrMounted = errors.New("container is mounted")
	// ErrNotMounted: the container is not mounted.
	ErrNotMounted = errors.New("container is not mounted")
)

// Container is one container's record.
type Container struct {
	Name string `json:"name"`
	// Template is the template it was created from (or last rebased on).
	Template string `json:"template"`
	// Layers is that template's stack when the container took it, bottom
	// first: the container keeps it even if the template moves on.
	Layers  []digest.Digest  `json:"layers"`
	Config  templates.Config `json:"config"`
	Driver  string           `json:"driver"`
	Created time.Time        `json:"created"`
	// Settings are what it runs with (see [Settings]).
	Settings Settings `json:"settings"`
	// Mount is set while the container is mounted.
	Mount *MountState `json:"mount,omitempty"`
}

// MountState says where and how a container is mounted.
type MountState struct {
	Driver string `json:"driver"`
	Target string `json:"target"`
}

// Manager manages the containers of one store.
type Manager struct {
	store   *templates.Store
	dir     string
	running RunningFunc
}

// Open returns the manager of st's containers, creating their directory.
func Open(st *templates.Store) (*Manager, error) {
	m := &Manager{store: st, dir: filepath.Join(st.Layers.Root(), "containers")}
	if err := os.MkdirAll(m.dir, 0o700); err != nil {
		return nil, fmt.Errorf("open containers: %w", err)
	}
	return m, nil
}

// ValidateName checks a container name: the rule of template names
// (lowercase letters and digits separated by single '.', '_' or '-').
func ValidateName(name string) error {
	if strings.Contains(name, ":") {
		return fmt.Errorf("invalid container name %q: no ':' (a container has no tag)", name)
	}
	if _, err := templates.ParseRef(name); err != nil {
		return fmt.Errorf("invalid container name %q: use lowercase letters, digits and single '.', '_' or '-' between them", name)
	}
	return nil
}

func (m *Manager) path(name string, parts ...string) string {
	return filepath.Join(append([]string{m.dir, name}, parts...)...)
}

// Get returns the container name.
func (m *Manager) Get(name string) (*Container, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(m.path(name, "config.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", name, err)
	}
	var c Container
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("container %s: corrupt config.json: %w", name, err)
	}
	c.Mount = readMountRecord(m.path(name))
	return &c, nil
}

// UpperDir is the upper directory of container name.
// With a disk quota it is in the container's disk image, which must be
// mounted (see holdDisk).
func (m *Manager) UpperDir(name string) string { return upperDir(m.path(name)) }

// durable and runtimeOnly say whether writeJSON makes a file survive a
// power loss: a container's configuration must, its mount state need not,
// since no mount does.
const (
	durable     = true
	runtimeOnly = false
)

// writeJSON replaces the file at path with v, synced to disk when sync is
// durable.
func writeJSON(path string, v any, sync bool) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err == nil {
		err = atomicfile.WriteFile(path, append(b, '\n'), sync)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// lock takes the container's exclusive lock, serializing the operations
// that change it across processes. It fails with ErrNotFound when the
// container does not exist.
func (m *Manager) lock(name string) (*Container, func(), error) {
	if err := ValidateName(name); err != nil {
		return nil, nil, err
	}
	fd, err := unix.Open(m.path(name), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil, nil, fmt.Errorf("%s: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("container %s: %w", name, err)
	}
	err = flock.Lock(fd, unix.LOCK_EX)
	unlock := func() { unix.Close(fd) }
	if err != nil {
		unlock()
		return nil, nil, fmt.Errorf("lock container %s: %w", name, err)
	}
	if err := m.finishRestore(name); err != nil {
		unlock()
		return nil, nil, err
	}
	c, err := m.Get(name)
	if err != nil {
		unlock()
		return nil, nil, err
	}
	return c, unlock, nil
}

// lockWithStore takes the store's shared lock (so that GC keeps what the
// operation reads and writes) and then container name's lock; release
// drops both.
func (m *Manager) lockWithStore(name string) (c *Container, release func(), err error) {
	lock, err := m.store.Layers.LockShared()
	if err != nil {
		return nil, nil, err
	}
	c, unlock, err := m.lock(name)
	if err != nil {
		lock.Unlock()
		return nil, nil, err
	}
	return c, func() { unlock(); lock.Unlock() }, nil
}
