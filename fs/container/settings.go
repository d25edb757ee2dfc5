package container

import "fmt"

// SettingsVersion is the version of [Settings] this package writes. A
// record without a version (made before settings existed) reads as the
// zero Settings: the template's defaults. Fields added later (disk,
// volumes, network, onboot, restart) raise it; a newer record than this
// package knows is refused rather than rewritten without the new fields.
const SettingsVersion = 1

// Settings are what a container runs with, as create and set give them:
// its configuration, kept in config.json with the rest of its record.
// An empty field means the template's value or the launcher's default.
type Settings struct {
	Version int `json:"version"`
	// Args is the command; empty runs the template's.
	Args []string `json:"args,omitempty"`
	// Env is added to the template's environment (later entries win).
	Env []string `json:"env,omitempty"`
	// Workdir, User ("user[:group]") and Hostname replace the template's.
	Workdir  string `json:"workdir,omitempty"`
	User     string `json:"user,omitempty"`
	Hostname string `json:"hostname,omitempty"`
	// Memory is the memory limit in bytes, 0 for none.
	Memory int64 `json:"memory,omitempty"`
	// CPUs is the CPU bandwidth in CPUs, 0 for none.
	CPUs float64 `json:"cpus,omitempty"`
	// Pids is the process limit: 0 the launcher's default, -1 none.
	Pids int64 `json:"pids,omitempty"`
	// Driver mounts the root at a start when it is not mounted.
	Driver string `json:"driver,omitempty"`
	// Network is "none" (the default when empty), "host", "bridge" or
	// "bridge=NAME" (an address of its own on a network).
	Network  string `json:"network,omitempty"`
	ReadOnly bool   `json:"readOnly,omitempty"`
	// IP is a bridged container's address ("" for a free one, kept
	// until rm); Publish are its published ports, "[HOSTIP:]HOSTPORT:
	// PORT[/tcp|udp]".
	IP      string   `json:"ip,omitempty"`
	Publish []string `json:"publish,omitempty"`
	// Mounts are the volumes, bind mounts and tmpfs mounts made at each
	// start, in order (-v, --tmpfs).
	Mounts []Mount `json:"mounts,omitempty"`
	// Seccomp is "" (the default filter), "unconfined" or a profile's
	// absolute path; NoNewPrivileges sets no_new_privs.
	Seccomp         string `json:"seccomp,omitempty"`
	NoNewPrivileges bool   `json:"noNewPrivileges,omitempty"`
	// Disk is the disk quota of the container's differences in bytes, 0
	// for none; Inodes limits their inodes too (with Disk only). See
	// disk.go: they live in a disk image of that size.
	Disk   int64 `json:"disk,omitempty"`
	Inodes int64 `json:"inodes,omitempty"`
	// Init runs acetate's init as PID 1, the command as its child
	// (runtime.Spec.Init, docker run --init).
	Init bool `json:"init,omitempty"`
	// StopSignal is the signal stop sends ("" for what the container's
	// init expects: see runtime.Spec.StopSignal).
	StopSignal string `json:"stopSignal,omitempty"`
	// Onboot starts the container at the host's boot (acetate autostart),
	// in BootOrder (lower first; equal ones in parallel).
	Onboot    bool `json:"onboot,omitempty"`
	BootOrder int  `json:"bootOrder,omitempty"`
	// Restart is the restart policy: "" (no), "on-failure[:N]",
	// "always" or "unless-stopped" (runtime.ParseRestartPolicy).
	Restart string `json:"restart,omitempty"`
}

// CreateOpt sets something of a container being created.
type CreateOpt func(*Container)

// WithSettings gives a new container its settings.
func WithSettings(s Settings) CreateOpt {
	return func(c *Container) {
		c.Settings = s
		c.Settings.Version = SettingsVersion
	}
}

// Configure changes container name's settings by change, under the
// container's lock, and returns the container as it now is. When change
// fails nothing is written. Configure changes nothing else: a running
// container keeps what it started with, unless change applies it.
func (m *Manager) Configure(name string, change func(*Settings) error) (*Container, error) {
	c, unlock, err := m.lock(name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := checkVersion(c); err != nil {
		return nil, err
	}
	s := c.Settings
	if err := change(&s); err != nil {
		return nil, err
	}
	if err := m.applyQuota(c, s); err != nil {
		return nil, fmt.Errorf("configure %s: %w", name, err)
	}
	mount := c.Mount
	c.Settings, c.Settings.Version, c.Mount = s, SettingsVersion, nil
	if err := writeJSON(m.path(name, "config.json"), c, durable); err != nil {
		return nil, fmt.Errorf("configure %s: %w", name, err)
	}
	c.Mount = mount
	return c, nil
}

// checkVersion refuses settings newer than this package knows.
func checkVersion(c *Container) error {
	if c.Settings.Version > SettingsVersion {
		return fmt.Errorf("container %s: settings version %d is newer than this acetate knows (%d): use a newer acetate",
			c.Name, c.Settings.Version, SettingsVersion)
	}
	return nil
}
