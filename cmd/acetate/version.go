package main

import (
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

// version is acetate's release, set at build time with
// -ldflags "-X main.version=v1.2.3"; else the module version, else "devel".
var version string

// versionInfo is what acetate version reports: the build, and the kernel
// features the drivers and the launcher use on this machine.
type versionInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	Modified  bool   `json:"modified"`
	BuildTime string `json:"buildTime,omitempty"`
	Go        string `json:"go"`
	Kernel    string `json:"kernel"`
	// OverlayDataOnly: the overlay driver's data-only lower layers (Linux 6.5+).
	OverlayDataOnly feature `json:"overlayDataOnlyLayers"`
	// FUSEPassthrough: the fuse driver's kernel passthrough (Linux 6.9+, root).
	FUSEPassthrough feature `json:"fusePassthrough"`
	// CgroupMode is "v2 (unified)", "hybrid" or "v1".
	CgroupMode string `json:"cgroupMode"`
}

// feature is one kernel feature: whether it is there, and why not.
type feature struct {
	Available bool   `json:"available"`
	Detail    string `json:"detail"`
}

func (f feature) String() string {
	if f.Available {
		return "yes (" + f.Detail + ")"
	}
	return "no (" + f.Detail + ")"
}

// readVersion collects the build's version from its build information and
// probes the running kernel.
func readVersion() versionInfo {
	v := versionInfo{Version: version, Commit: "unknown (built without VCS stamping, -buildvcs=false)", Go: goruntime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Commit = s.Value
			case "vcs.time":
				v.BuildTime = s.Value
			case "vcs.modified":
				v.Modified = s.Value == "true"
			}
		}
	}
	if v.Version == "" {
		v.Version = "devel"
	}
	var u unix.Utsname
	if err := unix.Uname(&u); err == nil {
		v.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	v.OverlayDataOnly = kernelFeature(v.Kernel, 6, 5, filesystemKnown("overlay"), "overlayfs")
	v.FUSEPassthrough = kernelFeature(v.Kernel, 6, 9, filesystemKnown("fuse"), "fuse")
	if v.FUSEPassthrough.Available && os.Geteuid() != 0 {
		v.FUSEPassthrough = feature{false, "needs root (CAP_SYS_ADMIN)"}
	}
	v.CgroupMode = cgroupMode("/sys/fs/cgroup")
	return v
}

// kernelFeature says whether a feature of filesystem fs that came with
// Linux major.minor is there, from the kernel release and whether the
// kernel knows fs (/proc/filesystems).
func kernelFeature(release string, major, minor int, known bool, fs string) feature {
	if !known {
		return feature{false, fs + " is not in /proc/filesystems"}
	}
	maj, mnr, ok := kernelVersion(release)
	if !ok {
		return feature{false, fmt.Sprintf("kernel release %q not understood", release)}
	}
	if maj < major || maj == major && mnr < minor {
		return feature{false, fmt.Sprintf("Linux %d.%d, needs %d.%d", maj, mnr, major, minor)}
	}
	return feature{true, fmt.Sprintf("Linux %d.%d >= %d.%d", maj, mnr, major, minor)}
}

// kernelVersion parses the major and minor numbers of a kernel release
// such as "6.1.0-18-amd64".
func kernelVersion(release string) (major, minor int, ok bool) {
	parts := strings.SplitN(release, ".", 3)
	if len(parts) < 2 {
		return 0, 0, false
	}
	digits := parts[1] // "9-rc1" in "6.9-rc1"
	if i := strings.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		digits = digits[:i]
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(digits)
	return major, minor, err1 == nil && err2 == nil
}

// filesystemKnown reports whether /proc/filesystems lists name.
func filesystemKnown(name string) bool {
	b, err := os.ReadFile("/proc/filesystems")
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[len(f)-1] == name {
			return true
		}
	}
	return false
}

// cgroupMode names the cgroup layout mounted at root: v2 when root is a
// cgroup2 file system, hybrid when v1 hierarchies sit beside a v2 one at
// root/unified, else v1.
func cgroupMode(root string) string {
	isCgroup2 := func(p string) bool {
		var st unix.Statfs_t
		return unix.Statfs(p, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC
	}
	switch {
	case isCgroup2(root):
		return "v2 (unified)"
	case isCgroup2(filepath.Join(root, "unified")):
		return "hybrid (v1 controllers, v2 at " + filepath.Join(root, "unified") + ")"
	}
	return "v1"
}

// printVersion renders readVersion as a table or JSON.
func (a *app) printVersion() error {
	v := readVersion()
	commit := v.Commit
	if v.Modified {
		commit += " (modified)"
	}
	return a.render(v, table{
		header: []string{"FIELD", "VALUE"},
		rows: [][]string{
			{"version", v.Version},
			{"commit", commit},
			{"go", v.Go},
			{"kernel", v.Kernel},
			{"overlay data-only layers", v.OverlayDataOnly.String()},
			{"fuse passthrough", v.FUSEPassthrough.String()},
			{"cgroup mode", v.CgroupMode},
		},
	})
}

func newVersionCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Show acetate's version and commit, Go's version, and the kernel features found",
		Long: `Version shows acetate's version, the commit it was built from (with
"(modified)" when the checkout had uncommitted changes), the Go version, and
the kernel features acetate uses here: overlayfs data-only lower layers
(the overlay driver; Linux 6.5+), FUSE passthrough (the fuse driver's fast
reads and writes; Linux 6.9+, as root) and the cgroup mode (v2, hybrid or
v1) that run's limits use. "acetate --version" shows the same.`,
		Example: `  acetate version
  acetate --version --format json | jq -r .commit`,
		Args: exactArgs(0),
		RunE: func(c *cobra.Command, args []string) error { return a.printVersion() },
	}
}
