package runtime

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestHostname(t *testing.T) {
	r := sh(t, "hostname; cat /etc/hostname >/dev/null; echo $HOSTNAME", func(s *Spec) { s.Hostname = "acetate-box" })
	if r.code != 0 || r.stdout != "acetate-box\nacetate-box\n" {
		t.Fatalf("got %+v", r)
	}
	host, _ := os.Hostname()
	if host == "acetate-box" {
		t.Fatal("the container's hostname leaked to the host")
	}
}

func TestHostFilesInvisible(t *testing.T) {
	marker, err := os.CreateTemp("/tmp", "acetate-marker-")
	if err != nil {
		t.Fatal(err)
	}
	marker.Close()
	defer os.Remove(marker.Name())
	root := overlayRoot(t)
	r := runSpec(t, Spec{Rootfs: root, Args: []string{"/bin/sh", "-c",
		fmt.Sprintf("test -e %s && echo MARKER-SEEN; cut -d' ' -f5 /proc/self/mountinfo", marker.Name())}})
	if r.code != 0 {
		t.Fatalf("got %+v", r)
	}
	if strings.Contains(r.stdout, "MARKER-SEEN") {
		t.Errorf("a host file in /tmp is visible in the container:\n%s", r.stdout)
	}
	// No host mount point shows in the mount table: the old root is
	// detached, and only the container's own mounts remain.
	for _, mp := range strings.Fields(r.stdout) {
		if mp != "/" && !strings.HasPrefix(mp, "/proc") && !strings.HasPrefix(mp, "/sys") && !strings.HasPrefix(mp, "/dev") {
			t.Errorf("host mount %s visible in the container (root %s)", mp, root)
		}
	}
}

func TestInheritedDescriptorsDoNotLeak(t *testing.T) {
	// A descriptor of the caller without close-on-exec, on a host
	// directory: the classic way out of a container (fchdir, openat).
	fd, err := unix.Open("/tmp", unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	const leaked = 77
	if err := unix.Dup2(fd, leaked); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(leaked)
	r := sh(t, fmt.Sprintf("test -e /proc/self/fd/%d && echo leaked; test -e /proc/1/fd/%d && echo init-has-it; echo done", leaked, leaked))
	if r.stdout != "done\n" {
		t.Fatalf("descriptor %d reached the container: %+v", leaked, r)
	}
}

func TestSymlinkToRootResolvesInside(t *testing.T) {
	root := overlayRoot(t)
	// A link to "/" and a mount point that is a link to "/": both must
	// resolve inside the container.
	if err := os.Symlink("/", filepath.Join(root, "escape")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(root, "mnt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/", filepath.Join(root, "mnt")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "inside-marker"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	host := filepath.Join(t.TempDir(), "host-marker")
	os.WriteFile(host, nil, 0o644)
	r := runSpec(t, Spec{Rootfs: root, Args: []string{"/bin/sh", "-c",
		"test -e /escape/inside-marker && echo inside; test -e /escape" + host + " && echo host; ls /mnt/escape/inside-marker"}})
	if r.code != 0 || !strings.HasPrefix(r.stdout, "inside\n") || strings.Contains(r.stdout, "host") {
		t.Fatalf("got %+v", r)
	}
}

func TestKernelInterfacesLocked(t *testing.T) {
	checks := map[string]string{
		"remount /sys rw":        "mount -o remount,rw /sys",
		"write sysrq-trigger":    "echo h > /proc/sysrq-trigger",
		"write /proc/sys":        "echo 1 > /proc/sys/kernel/panic",
		"mknod block device":     "mknod /x b 8 0",
		"mknod char device":      "mknod /y c 1 3",
		"mount tmpfs":            "mount -t tmpfs none /mnt",
		"set hostname":           "hostname other",
		"read /proc/kcore":       "test -s /proc/kcore",
		"write /sys":             "echo 1 > /sys/kernel/profiling",
		"create file in /sys":    "touch /sys/x",
		"read host /proc/1/root": "ls /proc/1/root/proc/1/root/../../.. | grep -q work",
	}
	for name, cmd := range checks {
		t.Run(name, func(t *testing.T) {
			r := sh(t, cmd)
			if r.code == 0 {
				t.Fatalf("%q succeeded in the container: %+v", cmd, r)
			}
		})
	}
}

func TestCapabilities(t *testing.T) {
	r := sh(t, "grep -E '^(CapBnd|CapEff|CapPrm|CapInh|CapAmb|NoNewPrivs)' /proc/self/status")
	want := fmt.Sprintf("%016x", capMask(defaultCapabilities))
	got := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		f := strings.Fields(l)
		if len(f) == 2 {
			got[strings.TrimSuffix(f[0], ":")] = f[1]
		}
	}
	for _, k := range []string{"CapBnd", "CapEff", "CapPrm"} {
		if got[k] != want {
			t.Errorf("%s = %s, want %s", k, got[k], want)
		}
	}
	if got["CapAmb"] != "0000000000000000" || got["CapInh"] != "0000000000000000" || got["NoNewPrivs"] != "0" {
		t.Errorf("ambient %s, inheritable %s, no_new_privs %s", got["CapAmb"], got["CapInh"], got["NoNewPrivs"])
	}
	r = sh(t, "grep NoNewPrivs /proc/self/status", func(s *Spec) { s.NoNewPrivileges = true })
	if r.stdout != "NoNewPrivs:\t1\n" {
		t.Errorf("with NoNewPrivileges: %q", r.stdout)
	}
	// A non-root user keeps no capability.
	r = sh(t, "grep -E '^CapEff' /proc/self/status; id -u; id -g; id -G", func(s *Spec) { s.User, s.Group = 1000, 1000 })
	if r.stdout != "CapEff:\t0000000000000000\n1000\n1000\n1000\n" {
		t.Errorf("as uid 1000: %q", r.stdout)
	}
}

func TestPrivilegedCallsFail(t *testing.T) {
	root := overlayRoot(t)
	probe := installProbe(t, root)
	for _, check := range []string{"finit_module", "setns", "init-protected"} {
		// init-protected probes acetate's init (Init), PID 1 then.
		r := runSpec(t, Spec{Rootfs: root, Args: []string{probe, "__probe", check}, Init: check == "init-protected"})
		if r.code != 0 {
			t.Errorf("%s: %+v", check, r)
		} else {
			t.Logf("%s: %s", check, strings.TrimSpace(r.stdout))
		}
	}
}

func TestDevAndProc(t *testing.T) {
	r := sh(t, `ls /dev | tr '\n' ' '; echo; ls -l /dev/ptmx; cat /proc/keys | wc -c; mount | grep -c ' on /proc/sys type proc (ro'; head -c 4 /dev/urandom | wc -c; echo x > /dev/shm/a && cat /dev/shm/a`)
	want := "core fd full mqueue null ptmx pts random shm stderr stdin stdout tty urandom zero \n"
	if !strings.HasPrefix(r.stdout, want) {
		t.Errorf("/dev: got\n%s\nwant prefix %q", r.stdout, want)
	}
	lines := strings.Split(r.stdout, "\n")
	if len(lines) < 6 || !strings.Contains(lines[1], "-> pts/ptmx") || lines[2] != "0" || lines[3] != "1" || lines[4] != "4" || lines[5] != "x" {
		t.Errorf("got %q", lines)
	}
}

func TestNetworkNone(t *testing.T) {
	r := sh(t, "cat /sys/class/net/lo/operstate /sys/class/net/lo/flags; ls /sys/class/net")
	// lo is up (flags has IFF_UP) and alone.
	if r.code != 0 || !strings.HasSuffix(r.stdout, "lo\n") || !strings.Contains(r.stdout, "0x9") {
		t.Fatalf("got %+v", r)
	}
	r = sh(t, "ls /sys/class/net | wc -l", func(s *Spec) { s.Network = NetworkHost })
	if r.code != 0 || r.stdout == "1\n" {
		t.Logf("host network shows %q interfaces", r.stdout)
	}
}

func TestCgroupNamespace(t *testing.T) {
	// In its own cgroup namespace, rooted at its cgroups, the command
	// sees them as "/", for every controller it was put under.
	r := sh(t, "cat /proc/self/cgroup", func(s *Spec) { s.CgroupName = testCgroupName() })
	n := 0
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		f := strings.SplitN(l, ":", 3)
		if len(f) != 3 {
			t.Fatalf("bad line %q", l)
		}
		for _, c := range strings.Split(f[1], ",") {
			if c == "memory" || c == "pids" || c == "cpu" || (f[0] == "0" && c == "") {
				n++
				if f[2] != "/" {
					t.Errorf("%s: cgroup %s, want /", c, f[2])
				}
			}
		}
	}
	if n == 0 {
		t.Fatalf("no container controller in %q", r.stdout)
	}
}

func TestReadOnlyRoot(t *testing.T) {
	r := sh(t, "touch /etc/x && echo wrote; touch /dev/shm/ok && echo shm", func(s *Spec) { s.ReadOnly = true })
	if strings.Contains(r.stdout, "wrote") || !strings.Contains(r.stdout, "shm") {
		t.Fatalf("got %+v", r)
	}
}
