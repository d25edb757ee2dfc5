package runtime

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/acetate/acetate/internal/testtree"
	"golang.org/x/sys/unix"
)

// mknod makes a device node at path, or fails the test.
func mknod(t *testing.T, path string, mode uint32, major, minor uint32) {
	t.Helper()
	if err := unix.Mknod(path, mode|0o666, int(unix.Mkdev(major, minor))); err != nil {
		t.Fatal(err)
	}
}

// A template ships device nodes: the host's kernel log (c 1:11), its first
// loop device (b 7:0), and even /dev/null's numbers. None opens in the
// container, whose root is nodev, though the host's mount of the root here
// is not.
func TestTemplateDeviceNodesDoNotOpen(t *testing.T) {
	root := overlayRoot(t)
	mknod(t, filepath.Join(root, "kmsg"), unix.S_IFCHR, 1, 11)
	mknod(t, filepath.Join(root, "loop0"), unix.S_IFBLK, 7, 0)
	mknod(t, filepath.Join(root, "null"), unix.S_IFCHR, 1, 3)
	for _, cg := range []string{"", testCgroupName()} {
		r := runSpec(t, Spec{Rootfs: root, CgroupName: cg, Args: []string{"/bin/sh", "-c",
			"for d in /kmsg /loop0 /null; do (exec 3<$d && echo opened $d); (exec 3>$d && echo opened $d for writing); done; echo done"}})
		if r.stdout != "done\n" || strings.Count(r.stderr, "Permission denied") != 6 {
			t.Errorf("cgroup %q: a template's device node opened, or failed otherwise: %+v", cg, r)
		}
	}
}

// The host (or anything that can) puts a device node in the container's
// /dev, a tmpfs that must honour nodes: the devices cgroup refuses every
// device but the standard ones. Without cgroups (no devices controller) the
// same node opens, so the refusal is the cgroup's.
func TestDevicesCgroup(t *testing.T) {
	requireDevicesCgroup(t)
	for _, cg := range []string{testCgroupName(), ""} {
		dir, pid := startTest(t, Spec{Args: []string{"sleep", "1000"}, CgroupName: cg})
		mknod(t, fmt.Sprintf("/proc/%d/root/dev/kmsg-from-host", pid), unix.S_IFCHR, 1, 11)
		var out strings.Builder
		code, err := Exec(context.Background(), dir, []string{"/bin/sh", "-c",
			"(exec 3>/dev/kmsg-from-host && echo opened kmsg); exec 3</dev/null && echo opened null"},
			ExecOptions{Stdout: &out, Stderr: &out})
		if err != nil || code != 0 {
			t.Fatalf("exec: %d, %v: %s", code, err, out.String())
		}
		want := "Operation not permitted"
		if cg == "" {
			want = "opened kmsg"
		}
		if !strings.Contains(out.String(), want) || !strings.Contains(out.String(), "opened null") {
			t.Errorf("cgroup %q: got %q, want %q and /dev/null open", cg, out.String(), want)
		}
	}
}

// requireDevicesCgroup skips a test on a host where containers get no
// device limits from cgroups.
func requireDevicesCgroup(t *testing.T) {
	t.Helper()
	testtree.RequireRoot(t)
	v2, v1, err := detectCgroups(cgroupRoot)
	if err != nil || (!v2 && v1["devices"] == "") {
		t.Skipf("no devices cgroup controller and no cgroup v2 on this host (%v)", err)
	}
}

// The cgroup v2 device program, on a cgroup of the v2 tree (a hybrid
// host's too): a process in it cannot open the kernel log for writing, and
// can open /dev/null; one beside it can open both.
func TestDeviceProgramV2(t *testing.T) {
	base := cgroup2Tree(t)
	open := func(cg string) string {
		script := "(exec 3>/dev/kmsg && echo opened kmsg); exec 3</dev/null && echo opened null"
		if cg != "" {
			script = "echo $$ > " + cg + "/cgroup.procs && " + script
		}
		out, _ := exec.Command("/bin/sh", "-c", script).CombinedOutput()
		return string(out)
	}
	dir := filepath.Join(base, fmt.Sprintf("acetate-test-devices-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(dir) })
	if err := limitDevicesV2(dir); err != nil {
		t.Fatal(err)
	}
	if got := open(dir); !strings.Contains(got, "Operation not permitted") || strings.Contains(got, "opened kmsg") || !strings.Contains(got, "opened null") {
		t.Errorf("in the cgroup: %q", got)
	}
	if got := open(""); got != "opened kmsg\nopened null\n" {
		t.Errorf("outside the cgroup: %q", got)
	}
}

// rootPassword is the crypt(3) hash of "pw", made with openssl passwd -6.
const rootPassword = "$6$acetate$yfMJd01KmjXZ2ii4wv/.8xKiOGB/MHvzU6cGrKRId4PHbp.ZQLVMfoMG7WBAXgKsfcWraZ.7w.ejtqQ4M03kQ0"

// Sub-cgroups a container made (here by hand, three deep, on the v2 tree
// of a hybrid host or a v2 host) go with the container's cgroup.
func TestRemoveCgroupTreeV2(t *testing.T) {
	base := cgroup2Tree(t)
	dir := filepath.Join(base, fmt.Sprintf("acetate-test-tree-%d", os.Getpid()))
	t.Cleanup(func() {
		for _, d := range []string{"a/b/c", "a/b", "a", "d", ""} {
			os.Remove(filepath.Join(dir, d))
		}
	})
	if err := os.MkdirAll(filepath.Join(dir, "a/b/c"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	cg := &cgroup{v2: true, dirs: map[string]string{"memory": dir}}
	if err := cg.remove(time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("cgroup tree left: %v", err)
	}
}

// cgroup2Tree returns where a cgroup v2 hierarchy is mounted, or skips.
func cgroup2Tree(t *testing.T) string {
	t.Helper()
	testtree.RequireRoot(t)
	for _, base := range []string{cgroupRoot, filepath.Join(cgroupRoot, "unified")} {
		var sfs unix.Statfs_t
		if unix.Statfs(base, &sfs) == nil && sfs.Type == unix.CGROUP2_SUPER_MAGIC {
			return base
		}
	}
	t.Skip("no cgroup v2 hierarchy mounted")
	return ""
}

// Set-uid binaries of the template work inside, for their purpose: user
// alice (uid 1000) becomes root with su and root's password, and passwd -S
// reads her entry in /etc/shadow. A set-uid root binary gets no capability
// beyond the container's set (the bounding set caps it). With
// NoNewPrivileges, set-uid gives nothing.
func TestSetuidInside(t *testing.T) {
	root := overlayRoot(t)
	appendFile(t, filepath.Join(root, "etc/passwd"), "alice:x:1000:1000::/tmp:/bin/sh\n")
	shadow := readFile(t, filepath.Join(root, "etc/shadow"))
	shadow = strings.Replace(shadow, "root:*:", "root:"+rootPassword+":", 1) + "\nalice:!:19000:0:99999:7:::\n"
	if err := os.WriteFile(filepath.Join(root, "etc/shadow"), []byte(shadow), 0o640); err != nil {
		t.Fatal(err)
	}
	grep, err := os.ReadFile(filepath.Join(root, "usr/bin/grep"))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(root, "suid-grep")
	if err := os.WriteFile(p, grep, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Chmod(p, 0o4755); err != nil {
		t.Fatal(err)
	}
	alice := func(nnp bool, script string) result {
		return runSpec(t, Spec{Rootfs: root, User: 1000, Group: 1000, NoNewPrivileges: nnp, Args: []string{"/bin/sh", "-c", script}})
	}
	if r := alice(false, "echo pw | su -c 'id -u' root"); r.stdout != "0\n" {
		t.Errorf("su to root with its password: %+v", r)
	}
	if r := alice(false, "passwd -S"); !strings.HasPrefix(r.stdout, "alice L 2022-01-08") {
		t.Errorf("passwd -S (reads /etc/shadow): %+v", r)
	}
	want := fmt.Sprintf("CapEff:\t%016x\n", capMask(defaultCapabilities))
	if r := alice(false, "/suid-grep CapEff /proc/self/status"); r.stdout != want {
		t.Errorf("set-uid root binary as uid 1000: got %q, want %q", r.stdout, want)
	}
	if r := alice(true, "passwd -S; /suid-grep CapEff /proc/self/status"); strings.Contains(r.stdout, "2022") || !strings.HasSuffix(r.stdout, "CapEff:\t0000000000000000\n") {
		t.Errorf("with no_new_privs: %+v", r)
	}
}

func appendFile(t *testing.T, path, data string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(data); err != nil {
		t.Fatal(err)
	}
}

// The attack that lifted a container's limits: a new user namespace in
// which container root is host uid 0, cgroup v1 mounted there, and the
// container's own pids.max rewritten. The default filter refuses the user
// namespace, in the container's command and in an exec; without a filter
// the same attack works (so the test can tell), and the sub-cgroup it made
// is removed by stop.
func TestCgroupLimitsHoldForContainerRoot(t *testing.T) {
	testtree.RequireRoot(t)
	_, v1, err := detectCgroups(cgroupRoot)
	if err != nil || v1["pids"] == "" {
		t.Skipf("needs a cgroup v1 pids hierarchy (%v)", err)
	}
	attack := "unshare -UrmC sh -c 'mount -t cgroup -o pids none /mnt && echo max > /mnt/pids.max && mkdir /mnt/sub && echo lifted'; sleep 1000"
	for _, profile := range []string{"", SeccompUnconfined} {
		cg := testCgroupName()
		dir, _ := startTest(t, Spec{Args: []string{"/bin/sh", "-c", attack}, CgroupName: cg, Seccomp: profile})
		var out strings.Builder
		code, _ := Exec(context.Background(), dir, []string{"unshare", "-Ur", "true"}, ExecOptions{Stderr: &out})
		pids := filepath.Join(v1["pids"], cg)
		log := filepath.Join(dir, logFile)
		if profile == SeccompUnconfined {
			waitFor(t, "the attack", func() bool {
				data, _ := os.ReadFile(log)
				return strings.Contains(string(data), "lifted") || strings.Contains(string(data), "unshare")
			})
			if code != 0 || readFile(t, filepath.Join(pids, "pids.max")) != "max" {
				data, _ := os.ReadFile(log)
				t.Skipf("without a filter the attack fails too on this host (user namespaces refused?), so stop's removal of the sub-cgroup it makes cannot be shown: exec %d %q, log %q", code, out.String(), data)
			}
			if err := Stop(dir, 0); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(pids); !os.IsNotExist(err) {
				t.Errorf("the container's cgroup or its sub-cgroup survived stop: %v", err)
			}
			continue
		}
		if code == 0 || !strings.Contains(out.String(), "Operation not permitted") {
			t.Errorf("unshare -Ur in an exec: %d %q", code, out.String())
		}
		waitFor(t, "the attack to fail", func() bool { data, _ := os.ReadFile(log); return strings.Contains(string(data), "unshare") })
		if got := readFile(t, filepath.Join(pids, "pids.max")); got != strconv.Itoa(DefaultPids) {
			t.Errorf("pids.max is %q after the attack", got)
		}
		if data, _ := os.ReadFile(log); strings.Contains(string(data), "lifted") {
			t.Errorf("the attack worked: %s", data)
		}
	}
}

// Root's keys: one in host root's user keyring, one in the caller's
// session keyring (on this thread, which starts the container). Inside,
// keyctl is refused by the default filter; without a filter, the session
// keyring is a new, empty one, and the caller's session key unreadable.
func TestKeyringNotShared(t *testing.T) {
	root := overlayRoot(t)
	probe := installProbe(t, root)
	goruntime.LockOSThread() // never unlocked: the thread, and its session keyring, die with the test
	if _, err := unix.KeyctlJoinSessionKeyring("acetate-test-" + strconv.Itoa(os.Getpid())); err != nil {
		t.Skipf("no keyrings: %v", err)
	}
	userKey, err := unix.AddKey("user", "acetate-test-user", []byte("USER-SECRET"), unix.KEY_SPEC_USER_KEYRING)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.KeyctlInt(unix.KEYCTL_UNLINK, userKey, unix.KEY_SPEC_USER_KEYRING, 0, 0) })
	sessKey, err := unix.AddKey("user", "acetate-test-session", []byte("SESSION-SECRET"), unix.KEY_SPEC_SESSION_KEYRING)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{probe, "__probe", "keys", strconv.Itoa(userKey), strconv.Itoa(sessKey)}
	r := runSpec(t, Spec{Rootfs: root, Args: args})
	if strings.Contains(r.stdout, "SECRET") || strings.Count(r.stdout, "operation not permitted") != 3 {
		t.Errorf("default filter: %+v", r)
	}
	r = runSpec(t, Spec{Rootfs: root, Args: args, Seccomp: SeccompUnconfined})
	lines := strings.Split(r.stdout, "\n")
	if len(lines) < 3 || lines[0] != fmt.Sprintf("%d: \"\"", unix.KEY_SPEC_SESSION_KEYRING) || strings.Contains(r.stdout, "SESSION-SECRET") {
		t.Errorf("unconfined: the session keyring is not a new empty one: %+v", r)
	}
	t.Logf("unconfined, root's user keyring (not namespaced): %s", lines[1])
}

// The caller's stdout is a file it appends to, its stdin a file too.
// Reopening /proc/self/fd/1 and /proc/self/fd/0 inside reaches pipes, not
// them: the output file is not truncated, the input file not rewritten.
func TestStdioNotReachable(t *testing.T) {
	dir := t.TempDir()
	outPath, inPath := filepath.Join(dir, "ops.log"), filepath.Join(dir, "input")
	if err := os.WriteFile(outPath, []byte("before\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(inPath, []byte("input\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := os.OpenFile(outPath, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	in, err := os.Open(inPath)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	var errb strings.Builder
	spec := Spec{Rootfs: overlayRoot(t), Stdin: in, Stdout: out, Stderr: &errb, Args: []string{"/bin/sh", "-c",
		"cat; echo out; : > /proc/self/fd/1; echo evil > /proc/self/fd/0; readlink /proc/self/fd/0 /proc/self/fd/1 >&2"}}
	if code, err := Run(context.Background(), spec); code != 0 || err != nil {
		t.Fatalf("Run: %d, %v, %s", code, err, errb.String())
	}
	if got := readFile(t, outPath); got != "before\ninput\nout" {
		t.Errorf("the caller's output file was reached: %q", got)
	}
	if got := readFile(t, inPath); got != "input" {
		t.Errorf("the caller's input file was reached: %q", got)
	}
	if strings.Contains(errb.String(), dir) || strings.Count(errb.String(), "pipe:") != 2 {
		t.Errorf("the container's stdin and stdout are not pipes: %q", errb.String())
	}
}

// A fork bomb in a container with cgroups and no pids limit given stops at
// DefaultPids (less the init and the shells), where the bomb's shell
// cannot fork and exits. The outer shell then reports the count with
// builtins only: every fork fails while the bomb's processes live.
func TestForkBombBoundedByDefault(t *testing.T) {
	bomb := `sh -c 'n=0; while [ $n -lt 20000 ]; do sleep 1000 & n=$((n+1)); echo $n >/tmp/n; done'; read n </tmp/n; echo $n`
	r := sh(t, bomb, func(s *Spec) { s.CgroupName = testCgroupName() })
	n, err := strconv.Atoi(strings.TrimSpace(r.stdout))
	if err != nil || n >= DefaultPids || n < DefaultPids-16 {
		t.Fatalf("fork bomb: %q (%s), want a count a little below %d", r.stdout, firstLine(r.stderr), DefaultPids)
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// What users run must still work under the default filter: apt-get
// installing a local package in the Debian template (dpkg, apt's sandbox
// user, maintainer scripts).
func TestDefaultFilterKeepsAptWorking(t *testing.T) {
	debs, _ := filepath.Glob("/var/cache/acetate-test/debs/tree_*.deb")
	if len(debs) == 0 {
		t.Skip("no tree_*.deb in /var/cache/acetate-test/debs")
	}
	root := overlayRoot(t)
	data, err := os.ReadFile(debs[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "tmp/tree.deb"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	r := runSpec(t, Spec{Rootfs: root, Args: []string{"/bin/sh", "-c", "apt-get install -y /tmp/tree.deb >/dev/null && tree --version"}})
	if r.code != 0 || !strings.HasPrefix(r.stdout, "tree v") {
		t.Fatalf("apt-get install under the default filter: %+v", r)
	}
}

// A Docker-format profile file: the filter compiler against the kernel,
// for each comparison, with values whose high 32 bits differ (the filter
// sees the whole 64-bit register).
func TestSeccompProfileFile(t *testing.T) {
	root := overlayRoot(t)
	probe := installProbe(t, root)
	values := []uint64{0o21, 0o22, 0o23, 1<<32 | 0o22, 0o122}
	rule := func(cond string) string {
		return `{"names": ["umask"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, ` + cond + `}]}`
	}
	cases := map[string]func(v uint64) bool{
		rule(`"op": "SCMP_CMP_EQ", "value": 18`):                                func(v uint64) bool { return v == 0o22 },
		rule(`"op": "SCMP_CMP_NE", "value": 18`):                                func(v uint64) bool { return v != 0o22 },
		rule(`"op": "SCMP_CMP_GT", "value": 18`):                                func(v uint64) bool { return v > 0o22 },
		rule(`"op": "SCMP_CMP_GE", "value": 18`):                                func(v uint64) bool { return v >= 0o22 },
		rule(`"op": "SCMP_CMP_LT", "value": 18`):                                func(v uint64) bool { return v < 0o22 },
		rule(`"op": "SCMP_CMP_LE", "value": 18`):                                func(v uint64) bool { return v <= 0o22 },
		rule(`"op": "SCMP_CMP_MASKED_EQ", "value": 4294967360, "valueTwo": 64`): func(v uint64) bool { return v&(1<<32|0o100) == 0o100 },
		// Rules testing one argument for equality, as socket(2)'s
		// allowed domains in the default profile: compiled as one set.
		rule(`"op": "SCMP_CMP_EQ", "value": 17`) + ", " + rule(`"op": "SCMP_CMP_EQ", "value": 19`) + ", " + rule(`"op": "SCMP_CMP_EQ", "value": 82`): func(v uint64) bool { return v == 0o21 || v == 0o23 || v == 0o122 },
	}
	args := []string{probe, "__probe", "umask"}
	for _, v := range values {
		args = append(args, strconv.FormatUint(v, 10))
	}
	for cond, denied := range cases {
		profile := filepath.Join(t.TempDir(), "profile.json")
		json := `{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [` + cond + `]}`
		if err := os.WriteFile(profile, []byte(json), 0o644); err != nil {
			t.Fatal(err)
		}
		var want strings.Builder
		for _, v := range values {
			res := "ok"
			if denied(v) {
				res = "operation not permitted"
			}
			fmt.Fprintf(&want, "%d:%s ", v, res)
		}
		if r := runSpec(t, Spec{Rootfs: root, Args: args, Seccomp: profile}); r.stdout != want.String()+"\n" {
			t.Errorf("%s:\n got %q\nwant %q", cond, r.stdout, want.String())
		}
	}
	if _, err := Run(context.Background(), Spec{Rootfs: root, Args: args, Seccomp: filepath.Join(root, "missing.json")}); err == nil {
		t.Error("a missing profile file was accepted")
	}
}

// The default filter's argument checks, against the kernel: sockets of the
// host/guest channel (AF_VSOCK; this may be a VM whose agent listens there)
// and of the kernel crypto API (AF_ALG) are refused, the usual ones made.
func TestDefaultFilterSocketDomains(t *testing.T) {
	root := overlayRoot(t)
	probe := installProbe(t, root)
	r := runSpec(t, Spec{Rootfs: root, Args: []string{probe, "__probe", "socket",
		strconv.Itoa(unix.AF_UNIX), strconv.Itoa(unix.AF_INET), strconv.Itoa(unix.AF_INET6),
		strconv.Itoa(unix.AF_VSOCK), strconv.Itoa(unix.AF_ALG)}})
	want := fmt.Sprintf("%d:ok %d:ok %d:ok %d:operation not permitted %d:operation not permitted \n",
		unix.AF_UNIX, unix.AF_INET, unix.AF_INET6, unix.AF_VSOCK, unix.AF_ALG)
	if r.stdout != want {
		t.Errorf("got %q, want %q", r.stdout, want)
	}
}

func TestSyscallTableSorted(t *testing.T) {
	for i := 1; i < len(syscallTable); i++ {
		if syscallTable[i-1].name >= syscallTable[i].name {
			t.Fatalf("syscallTable not sorted at %q, %q", syscallTable[i-1].name, syscallTable[i].name)
		}
	}
	if nr, ok := syscallNumber("umask"); !ok || nr != unix.SYS_UMASK {
		t.Errorf("umask: %d, %v", nr, ok)
	}
}
