package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// binary is the acetate command built once for these tests.
var binary string

func TestMain(m *testing.M) {
	had := cgroupParents()
	dir, err := os.MkdirTemp("", "acetate-bin-")
	if err != nil {
		panic(err)
	}
	os.Chmod(dir, 0o755) // other users run it too
	binary = filepath.Join(dir, "acetate")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		panic("go build: " + err.Error() + "\n" + string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	removeMachineStore()
	removeEmptyCgroupParents(had)
	os.Exit(code)
}

// cgroupParents lists the parent cgroups acetate makes containers'
// cgroups in (acetate/STORE, then acetate), in every hierarchy.
func cgroupParents() []string {
	var out []string
	for _, pattern := range []string{"/sys/fs/cgroup/*/acetate/*", "/sys/fs/cgroup/acetate/*", "/sys/fs/cgroup/*/acetate", "/sys/fs/cgroup/acetate"} {
		dirs, _ := filepath.Glob(pattern)
		out = append(out, dirs...)
	}
	return out
}

// removeEmptyCgroupParents removes the parent cgroups the containers the
// tests ran were made in, those not in had (there before the tests), where
// they are empty (rmdir refuses otherwise, so a store's running containers
// keep theirs): the tests leave no cgroup behind, and the parents of
// other stores (another test run's, the host's) are left alone.
func removeEmptyCgroupParents(had []string) {
	for _, d := range cgroupParents() {
		if !slices.Contains(had, d) {
			os.Remove(d)
		}
	}
}

// result is one run of the binary.
type result struct {
	code           int
	stdout, stderr string
}

// run runs acetate with the store at root.
func run(t *testing.T, root string, stdin []byte, args ...string) result {
	t.Helper()
	return runAs(t, nil, root, stdin, args...)
}

// runAs runs acetate as the user cred (nil: as this process).
func runAs(t *testing.T, cred *syscall.Credential, root string, stdin []byte, args ...string) result {
	t.Helper()
	return runFrom(t, cred, root, bytes.NewReader(stdin), args...)
}

// runFrom runs acetate as the user cred (nil: as this process) with stdin
// as its standard input.
func runFrom(t *testing.T, cred *syscall.Credential, root string, stdin io.Reader, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"--root", root}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr, cmd.Stdin = &out, &errb, stdin
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return r
}

func ok(t *testing.T, r result) result {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	return r
}

func smallTree(t *testing.T) string {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "etc"), 0o755)
	os.WriteFile(filepath.Join(dir, "etc/hostname"), []byte("box\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "hello"), []byte("hello\n"), 0o755)
	return dir
}

// Exit codes and messages: usage errors 2, missing templates 3, fsck
// problems 4; errors go to stderr and name what was wrong.
func TestExitCodesAndErrors(t *testing.T) {
	root := t.TempDir()
	src := smallTree(t)
	ok(t, run(t, root, nil, "template", "publish", "base:1", "--from", src))
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"template", "publish", "Bad Name", "--from", src}, 2, `invalid template name "Bad Name"`},
		{[]string{"template", "publish", "a/b", "--from", src}, 2, `"a/b"`},
		{[]string{"template", "publish", "x"}, 2, "--from"},
		{[]string{"template", "publish", "x", "--from", "/no/such/dir"}, 1, "/no/such/dir"},
		{[]string{"template", "publish", "x", "--from", src, "--on", "nope"}, 3, "nope:latest"},
		{[]string{"template", "inspect", "nope:1"}, 3, "nope:1"},
		{[]string{"template", "export", "nope", "--to", t.TempDir() + "/o"}, 3, "nope:latest"},
		{[]string{"template", "rm", "nope"}, 3, "nope"},
		{[]string{"template", "ls", "--format", "yaml"}, 2, "--format"},
		{[]string{"template", "ls", "--bogus"}, 2, "bogus"},
	}
	for _, c := range cases {
		r := run(t, root, nil, c.args...)
		if r.code != c.code || !strings.Contains(r.stderr, c.want) || r.stdout != "" {
			t.Errorf("acetate %v: exit %d stderr %q stdout %q; want exit %d and %q on stderr", c.args, r.code, r.stderr, r.stdout, c.code, c.want)
		}
	}
}

// Listings are valid JSON with --format json, and publish reads stdin.
func TestJSONAndStdin(t *testing.T) {
	root := t.TempDir()
	src := smallTree(t)
	tarball, err := exec.Command("tar", "-C", src, "-c", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	ok(t, run(t, root, tarball, "template", "publish", "fromstdin:v1", "--from", "-", "--cmd", "/hello", "--env", "A=1"))
	ok(t, run(t, root, nil, "template", "tag", "fromstdin:v1", "other:v2"))
	var list []struct {
		Name, Tag string
		Config    struct{ Cmd, Env []string }
	}
	r := ok(t, run(t, root, nil, "template", "ls", "--format", "json"))
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list) != 2 {
		t.Fatalf("template ls json: %v %q", err, r.stdout)
	}
	if list[0].Name != "fromstdin" || list[0].Config.Cmd[0] != "/hello" || list[0].Config.Env[0] != "A=1" || list[1].Name != "other" {
		t.Fatalf("template ls: %+v", list)
	}
	var df struct {
		Templates struct{ Templates int }
		Savings   float64
	}
	if err := json.Unmarshal([]byte(ok(t, run(t, root, nil, "df", "--format", "json")).stdout), &df); err != nil || df.Templates.Templates != 2 || df.Savings <= 0 {
		t.Fatalf("df json: %v %+v", err, df)
	}
	// export --to - writes the tree as a tar stream on stdout.
	tr := tar.NewReader(strings.NewReader(ok(t, run(t, root, nil, "template", "export", "other:v2", "--to", "-")).stdout))
	var names []string
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		names = append(names, h.Name)
	}
	if !slices.Contains(names, "hello") || !slices.Contains(names, "etc/hostname") {
		t.Fatalf("export to stdout: entries %q", names)
	}
	var in struct{ Files int }
	if err := json.Unmarshal([]byte(ok(t, run(t, root, nil, "template", "inspect", "other:v2", "--format", "json")).stdout), &in); err != nil || in.Files != 2 {
		t.Fatalf("inspect json: %v %+v", err, in)
	}
}

// fsck exits 4 and names the template and path of a corrupt object.
func TestFsckExitCode(t *testing.T) {
	root := t.TempDir()
	ok(t, run(t, root, nil, "template", "publish", "base", "--from", smallTree(t)))
	ok(t, run(t, root, nil, "fsck"))
	objs, _ := filepath.Glob(filepath.Join(root, "objects/*/*"))
	for _, o := range objs {
		os.Chmod(o, 0o644)
		os.WriteFile(o, []byte("tampered\n"), 0o644)
	}
	r := run(t, root, nil, "fsck")
	if r.code != 4 || !strings.Contains(r.stdout, "corrupt-object") || !strings.Contains(r.stdout, "base:latest") {
		t.Fatalf("fsck of a tampered store: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// An unreadable file in the source fails the publish with an error naming
// it, and leaves the store as it was. Runs as an unprivileged user, since
// root reads everything.
func TestUnreadableSource(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to switch to another user")
	}
	const nobody = 65534
	dir, err := os.MkdirTemp("", "acetate-unreadable-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	root, src := filepath.Join(dir, "store"), filepath.Join(dir, "src")
	os.Mkdir(root, 0o755)
	os.Chown(root, nobody, nobody)
	os.MkdirAll(filepath.Join(src, "etc"), 0o755)
	os.WriteFile(filepath.Join(src, "etc/readable"), []byte("ok"), 0o644)
	os.WriteFile(filepath.Join(src, "etc/shadow"), []byte("secret"), 0o600)
	asNobody := func(args ...string) result {
		return runAs(t, &syscall.Credential{Uid: nobody, Gid: nobody}, root, nil, args...)
	}
	ok(t, asNobody("template", "ls"))
	before := listing(t, root)
	r := asNobody("template", "publish", "x", "--from", src)
	if r.code == 0 || !strings.Contains(r.stderr, filepath.Join(src, "etc/shadow")) || !strings.Contains(r.stderr, "permission denied") {
		t.Fatalf("publish of an unreadable source: exit %d, stderr %q stdout %q", r.code, r.stderr, r.stdout)
	}
	if after := listing(t, root); before != after {
		t.Fatalf("store changed:\n%s\n%s", before, after)
	}
}
