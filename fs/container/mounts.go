package container

// Kinds of [Mount].
const (
	// MountBind binds a host path (Source) in the container.
	MountBind = "bind"
	// MountVolume mounts a named volume (Source, see package fs/volume).
	MountVolume = "volume"
	// MountTmpfs mounts a new tmpfs of Size bytes.
	MountTmpfs = "tmpfs"
)

// Mount is one volume, bind mount or tmpfs of a container's settings
// (run -v, --tmpfs), mounted at each start. What it mounts is not the
// container's differences: diff, commit and snapshots leave it out.
type Mount struct {
	// Type is MountBind, MountVolume or MountTmpfs.
	Type string `json:"type"`
	// Source is a bind's host path or a volume's name.
	Source string `json:"source,omitempty"`
	// Target is the absolute path in the container.
	Target   string `json:"target"`
	ReadOnly bool   `json:"readOnly,omitempty"`
	// Size is a tmpfs's size in bytes (0: the kernel's default).
	Size int64 `json:"size,omitempty"`
}
