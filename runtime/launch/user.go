package launch

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// LookupUser resolves "user[:group]" — numbers, or names from the
// container's own /etc/passwd and /etc/group (never the host's) — to a uid
// and gid. A user given alone gets its primary group from /etc/passwd.
func LookupUser(rootfs, spec string) (uid, gid uint32, err error) {
	if spec == "" {
		return 0, 0, nil
	}
	user, group, hasGroup := strings.Cut(spec, ":")
	uid, primary, err := lookupID(rootfs, "/etc/passwd", user)
	if err != nil {
		return 0, 0, fmt.Errorf("--user %q: %w", spec, err)
	}
	gid = primary
	if hasGroup {
		if gid, _, err = lookupID(rootfs, "/etc/group", group); err != nil {
			return 0, 0, fmt.Errorf("--user %q: %w", spec, err)
		}
	}
	return uid, gid, nil
}

// lookupID returns the id of name in a passwd-format file of the
// container (field 3), and for passwd the primary gid (field 4). A number
// is taken as is, with gid = uid when passwd does not list it.
func lookupID(rootfs, file, name string) (id, gid uint32, err error) {
	if n, err := strconv.ParseUint(name, 10, 32); err == nil {
		id, gid = uint32(n), uint32(n)
		if _, g, err := scanIDs(rootfs, file, func(f []string) bool { return f[2] == name }); err == nil {
			gid = g
		}
		return id, gid, nil
	}
	return scanIDs(rootfs, file, func(f []string) bool { return f[0] == name })
}

func scanIDs(rootfs, file string, match func([]string) bool) (id, gid uint32, err error) {
	fields, err := findEntry(rootfs, file, match)
	if err != nil {
		return 0, 0, err
	}
	n, err := strconv.ParseUint(fields[2], 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("%s: bad id %q", file, fields[2])
	}
	id, gid = uint32(n), uint32(n)
	if len(fields) > 3 {
		if g, err := strconv.ParseUint(fields[3], 10, 32); err == nil {
			gid = uint32(g)
		}
	}
	return id, gid, nil
}

// findEntry returns the fields of the first line of a passwd-format file
// of the container that match accepts; it has at least three.
func findEntry(rootfs, file string, match func([]string) bool) ([]string, error) {
	f, err := openInRoot(rootfs, file)
	if err != nil {
		return nil, fmt.Errorf("no such user or group: the container's %s: %w", file, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) >= 3 && match(fields) {
			return fields, nil
		}
	}
	return nil, fmt.Errorf("no such user or group in the container's %s", file)
}

// userEnv returns HOME, USER and SHELL from uid's entry in the container's
// /etc/passwd (name:password:uid:gid:gecos:home:shell), as login, docker
// and systemd-nspawn set them; without an entry, HOME=/ alone, as docker.
func userEnv(rootfs string, uid uint32) []string {
	id := strconv.FormatUint(uint64(uid), 10)
	f, err := findEntry(rootfs, "/etc/passwd", func(f []string) bool { return f[2] == id })
	if err != nil || len(f) < 7 {
		return []string{"HOME=/"}
	}
	env := []string{"HOME=" + firstNonEmpty(f[5], "/"), "USER=" + f[0]}
	if f[6] != "" {
		env = append(env, "SHELL="+f[6])
	}
	return env
}

// openInRoot opens path as the container would see it: symlinks and ".."
// resolve inside rootfs (openat2 RESOLVE_IN_ROOT, Linux 5.6+), never
// reaching the host's files.
func openInRoot(rootfs, path string) (*os.File, error) {
	root, err := unix.Open(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(root)
	fd, err := unix.Openat2(root, strings.TrimPrefix(path, "/"), &unix.OpenHow{
		Flags: unix.O_RDONLY | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT})
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), filepath.Join(rootfs, path)), nil
}
