package launch

import (
	"fmt"
	"os"

	"github.com/acetate/acetate/fs/container"
	"github.com/acetate/acetate/fs/volume"
	"github.com/acetate/acetate/runtime"
)

// mounts turns a container's mounts into the runtime's: a named volume
// into its directory in the store, made at its first use, as docker does;
// a bind's host path must exist (a typo is an error, not a new empty
// directory on the host).
func (l *Launcher) mounts(ms []container.Mount) ([]runtime.Mount, error) {
	var out []runtime.Mount
	for _, m := range ms {
		rm := runtime.Mount{Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly, Size: m.Size}
		switch m.Type {
		case container.MountTmpfs:
			rm.Tmpfs = true
		case container.MountVolume:
			v, err := volume.Open(l.m.Store().Layers.Root()).Ensure(m.Source)
			if err != nil {
				return nil, err
			}
			rm.Source = v.Path
		case container.MountBind:
			if _, err := os.Stat(m.Source); err != nil {
				return nil, fmt.Errorf("bind mount on %s: %w", m.Target, err)
			}
		default:
			return nil, fmt.Errorf("mount on %s: unknown type %q", m.Target, m.Type)
		}
		out = append(out, rm)
	}
	return out, nil
}
