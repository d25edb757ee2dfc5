package container

import (
	"fmt"
	"slices"
	"strings"

	"github.com/acetate/acetate/fs"
	"github.com/acetate/acetate/fs/fuse"
	"github.com/acetate/acetate/fs/overlay"
)

// drivers maps each driver name to the driver, or to nil for a driver
// that is planned but not built in yet. The fuse driver re-executes the
// running binary as the store's FUSE server (one for every fuse mount of
// the store): main (and TestMain of tests that mount with it) must call
// fuse.ServeIfRequested first.
var drivers = map[string]fs.Driver{
	"overlay": overlay.Driver{},
	"fuse":    &fuse.Driver{},
}

// Driver returns the union driver called name.
func Driver(name string) (fs.Driver, error) {
	d, known := drivers[name]
	switch {
	case !known:
		return nil, fmt.Errorf("unknown driver %q: use one of %s", name, strings.Join(DriverNames(), ", "))
	case d == nil:
		return nil, fmt.Errorf("driver %q is not available yet in this build", name)
	}
	return d, nil
}

// DriverNames lists the driver names, sorted.
func DriverNames() []string {
	names := make([]string, 0, len(drivers))
	for n := range drivers {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
