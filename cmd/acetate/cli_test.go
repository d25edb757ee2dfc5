package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	goruntime "runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/acetate/acetate/internal/testtree"
)

// listing is the store's files with their sizes and mtimes (directories by
// name only: their mtimes change as staged files come and go), to show that
// a refused command changed nothing.
func listing(t *testing.T, root string) string {
	t.Helper()
	out, err := exec.Command("find", root, "(", "-type", "d", "-printf", "%p\n", ")", "-o", "-printf", "%p %s %T@\n").Output()
	if err != nil {
		t.Fatalf("find %s: %v", root, err)
	}
	return string(out)
}

// refused runs acetate, which must fail with exit code, name want on stderr,
// print nothing on stdout, and leave the store's files as they were.
func refused(t *testing.T, root string, code int, want string, args ...string) result {
	t.Helper()
	before := listing(t, root)
	r := run(t, root, nil, args...)
	if r.code != code || !strings.Contains(r.stderr, want) || r.stdout != "" {
		t.Errorf("acetate %v: exit %d, stderr %q, stdout %q; want exit %d and %q on stderr", args, r.code, r.stderr, r.stdout, code, want)
	}
	if after := listing(t, root); after != before {
		t.Errorf("acetate %v changed the store:\nbefore:\n%s\nafter:\n%s", args, before, after)
	}
	return r
}

// bench says in its help that cold cases drop the host's page cache, and
// how not to.
func TestBenchHelpSaysItDropsCaches(t *testing.T) {
	r := ok(t, run(t, t.TempDir(), nil, "bench", "--help"))
	for _, want := range []string{"/proc/sys/vm/drop_caches", "--no-drop-caches", "skipped"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("bench --help does not say %q:\n%s", want, r.stdout)
		}
	}
}

// An unknown command or subcommand is a usage error (exit 2) that names
// the nearest commands, and changes nothing.
func TestUnknownCommand(t *testing.T) {
	root := t.TempDir()
	ok(t, run(t, root, nil, "template", "publish", "base:1", "--from", smallTree(t)))
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"lss"}, `unknown command "lss" for "acetate". Did you mean "logs" or "ls" or "ps"?`},
		{[]string{"template", "lss"}, `unknown command "lss" for "acetate template". Did you mean "ls"?`},
		{[]string{"template", "df"}, `unknown command "df" for "acetate template". Did you mean "ls" or "rm"?`},
		{[]string{"template", "zzzzzz"}, `unknown command "zzzzzz" for "acetate template". See 'acetate template --help'.`},
		{[]string{"completion", "bsh"}, `Did you mean "bash"`},
	} {
		refused(t, root, exitUsage, c.want, c.args...)
	}
	// Without a subcommand, a group prints its help.
	if r := ok(t, run(t, root, nil, "template")); !strings.Contains(r.stdout, "Available Commands:") {
		t.Errorf("acetate template: %q", r.stdout)
	}
}

// Every --format json list is [] when empty, never null.
func TestJSONEmptyLists(t *testing.T) {
	testtree.RequireRoot(t)
	root := t.TempDir()
	ok(t, run(t, root, nil, "template", "publish", "base:1", "--from", smallTree(t)))
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"ps"}, "[]\n"},
		{[]string{"ls"}, "[]\n"},
		{[]string{"fsck"}, `"problems": []`},
	} {
		if r := ok(t, run(t, root, nil, append(c.args, "--format", "json")...)); !strings.Contains(r.stdout, c.want) {
			t.Errorf("%v --format json: %q, want %q", c.args, r.stdout, c.want)
		}
	}
	ok(t, run(t, root, nil, "create", "c1", "--from", "base:1"))
	if r := ok(t, run(t, root, nil, "diff", "c1", "--format", "json")); r.stdout != "[]\n" {
		t.Errorf("diff of an unchanged container: %q, want []", r.stdout)
	}
	ok(t, run(t, root, nil, "rm", "c1"))
	ok(t, run(t, root, nil, "template", "rm", "base:1"))
	if r := ok(t, run(t, root, nil, "template", "ls", "--format", "json")); r.stdout != "[]\n" {
		t.Errorf("template ls of an empty store: %q, want []", r.stdout)
	}
}

// stampedCommit returns the commit go build -buildvcs=auto stamps into a
// binary built here: HEAD, when the source is a git checkout with a .git
// directory and git is installed (Go does not look into a linked
// worktree's .git file, nor into a tree exported without git), else "".
func stampedCommit(t *testing.T) string {
	t.Helper()
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		return ""
	}
	if fi, err := os.Stat(filepath.Join(strings.TrimSpace(string(top)), ".git")); err != nil || !fi.IsDir() {
		return ""
	}
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(head))
}

// acetate version and --version show the build's version and commit (from
// the build's VCS information), Go's version and the kernel features; as a
// table and as JSON.
func TestVersion(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "acetate")
	if out, err := exec.Command("go", "build", "-buildvcs=auto", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build -buildvcs=auto: %v\n%s", err, out)
	}
	r := ok(t, run(t, t.TempDir(), nil, "version"))
	for _, want := range []string{"version ", "commit ", "go ", goruntime.Version(), "overlay data-only layers", "fuse passthrough", "cgroup mode"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("acetate version does not show %q:\n%s", want, r.stdout)
		}
	}
	out, err := exec.Command(bin, "--version", "--format", "json").Output()
	if err != nil {
		t.Fatalf("acetate --version --format json: %v", err)
	}
	var v struct {
		Version, Commit, Go, Kernel, CgroupMode string
		OverlayDataOnlyLayers, FusePassthrough  struct {
			Available bool
			Detail    string
		}
	}
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("--version --format json: %v\n%s", err, out)
	}
	if head := stampedCommit(t); head != "" {
		if v.Commit != head {
			t.Errorf("commit %q, want HEAD %s", v.Commit, head)
		}
	} else if !strings.HasPrefix(v.Commit, "unknown") {
		t.Errorf("commit %q from a tree Go cannot stamp, want unknown", v.Commit)
	}
	if v.Version == "" || v.Go != goruntime.Version() || v.Kernel == "" || v.OverlayDataOnlyLayers.Detail == "" ||
		v.FusePassthrough.Detail == "" || !strings.HasPrefix(v.CgroupMode, "v1") && !strings.HasPrefix(v.CgroupMode, "v2") && !strings.HasPrefix(v.CgroupMode, "hybrid") {
		t.Errorf("--version --format json: %+v", v)
	}
	refused(t, t.TempDir(), exitUsage, "accepts 0 arg(s)", "version", "extra")
}

// kernelVersion reads the major and minor numbers of kernel releases.
func TestKernelVersion(t *testing.T) {
	for release, want := range map[string][2]int{"6.1.0-18-amd64": {6, 1}, "6.18.44-fc-v669": {6, 18}, "5.15": {5, 15}, "6.9-rc1": {6, 9}} {
		if maj, mnr, ok := kernelVersion(release); !ok || maj != want[0] || mnr != want[1] {
			t.Errorf("kernelVersion(%q) = %d, %d, %v", release, maj, mnr, ok)
		}
	}
	if _, _, ok := kernelVersion("bogus"); ok {
		t.Error(`kernelVersion("bogus") is ok`)
	}
	if f := kernelFeature("6.1.0", 6, 5, true, "overlayfs"); f.Available || f.String() != "no (Linux 6.1, needs 6.5)" {
		t.Errorf("6.1 for a 6.5 feature: %v", f)
	}
}

// Shell completion offers template, container, driver, network and format
// names where a command takes them, and never creates a store.
func TestCompletion(t *testing.T) {
	testtree.RequireRoot(t)
	root := t.TempDir()
	ok(t, run(t, root, nil, "template", "publish", "base:1", "--from", smallTree(t)))
	ok(t, run(t, root, nil, "template", "tag", "base:1", "base:2"))
	ok(t, run(t, root, nil, "create", "c1", "--from", "base:1"))
	ok(t, run(t, root, nil, "create", "c2", "--from", "base:2"))
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"rm", ""}, []string{"c1", "c2"}},
		{[]string{"rm", "c1", ""}, []string{"c2"}},
		{[]string{"mount", ""}, []string{"c1", "c2"}},
		{[]string{"mount", "c1", ""}, nil},
		{[]string{"run", "c1", "--", ""}, nil},
		{[]string{"template", "inspect", ""}, []string{"base:1", "base:2"}},
		{[]string{"template", "rm", "base:2", ""}, []string{"base:1"}},
		{[]string{"rebase", "c1", ""}, []string{"base:1", "base:2"}},
		{[]string{"create", "c3", "--from", ""}, []string{"base:1", "base:2"}},
		{[]string{"mount", "c1", "--driver", ""}, []string{"fuse", "overlay"}},
		{[]string{"run", "c1", "--net", ""}, []string{"none", "host"}},
		{[]string{"ls", "--format", ""}, []string{"table", "json"}},
	} {
		r := ok(t, run(t, root, nil, append([]string{"__complete"}, c.args...)...))
		got := strings.Split(strings.TrimSpace(r.stdout), "\n")
		want := append(c.want, ":4") // the directive: no file names
		if !slices.Equal(got, want) {
			t.Errorf("__complete %q: %q, want %q", c.args, got, want)
		}
	}
	missing := filepath.Join(t.TempDir(), "nostore")
	if r := ok(t, run(t, missing, nil, "__complete", "rm", "")); strings.TrimSpace(r.stdout) != ":4" {
		t.Errorf("completion without a store: %q", r.stdout)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("completion made a store at %s: %v", missing, err)
	}
}

// appTree is smallTree with one more file: an application's tree.
func appTree(t *testing.T) string {
	dir := smallTree(t)
	if err := os.WriteFile(filepath.Join(dir, "app"), []byte("app\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// template rm refuses a template that templates are based on or that
// containers were made from, naming them, and removes nothing; --force
// removes the name only, and what used it keeps working, also after gc.
func TestTemplateRmInUse(t *testing.T) {
	testtree.RequireRoot(t)
	root := t.TempDir()
	ok(t, run(t, root, nil, "template", "publish", "base:1", "--from", smallTree(t)))
	ok(t, run(t, root, nil, "template", "publish", "app:1", "--from", appTree(t), "--on", "base:1"))
	ok(t, run(t, root, nil, "template", "publish", "spare:1", "--from", smallTree(t)))
	ok(t, run(t, root, nil, "create", "c1", "--from", "base:1"))
	ok(t, run(t, root, nil, "create", "c2", "--from", "app:1"))
	refused(t, root, exitFailure, "base:1 is used by template app:1, container c1: remove them first, or use --force", "template", "rm", "base:1")
	refused(t, root, exitFailure, "app:1 is used by container c2", "template", "rm", "spare:1", "app:1")
	refused(t, root, exitNotFound, "nope:1", "template", "rm", "spare:1", "nope:1")
	ok(t, run(t, root, nil, "template", "rm", "base:1", "--force"))
	if out := ok(t, run(t, root, nil, "template", "ls")).stdout; strings.Contains(out, "\nbase:1 ") || !regexp.MustCompile(`\napp:1 +2 +base:1 \(removed\) `).MatchString(out) {
		t.Errorf("template ls after rm --force base:1:\n%s", out)
	}
	ok(t, run(t, root, nil, "gc"))
	ok(t, run(t, root, nil, "fsck"))
	ok(t, run(t, root, nil, "diff", "c1"))
	ok(t, run(t, root, nil, "template", "export", "app:1", "--to", filepath.Join(t.TempDir(), "out")))
	ok(t, run(t, root, nil, "template", "rm", "spare:1", "spare:1"))
	// A template and the ones based on it go together.
	ok(t, run(t, root, nil, "template", "publish", "x:1", "--from", smallTree(t)))
	ok(t, run(t, root, nil, "template", "publish", "y:1", "--from", appTree(t), "--on", "x:1"))
	ok(t, run(t, root, nil, "template", "rm", "x:1", "y:1"))
	ok(t, run(t, root, nil, "rm", "c1", "c1"))
	if out := ok(t, run(t, root, nil, "template", "ls")).stdout; strings.Contains(out, "x:1") || strings.Contains(out, "spare:1") {
		t.Errorf("template ls after rm: %s", out)
	}
}

// publish, tag and commit refuse to replace an existing NAME:TAG unless
// --replace, before any work, and no template can be its own base.
func TestNoSilentOverwrite(t *testing.T) {
	testtree.RequireRoot(t)
	root := t.TempDir()
	src := smallTree(t)
	ok(t, run(t, root, nil, "template", "publish", "base:1", "--from", src))
	ok(t, run(t, root, nil, "template", "publish", "app:1", "--from", appTree(t), "--on", "base:1"))
	ok(t, run(t, root, nil, "template", "tag", "base:1", "other:1"))
	ok(t, run(t, root, nil, "create", "c1", "--from", "base:1"))
	ok(t, run(t, root, nil, "commit", "c1", "snap:1"))
	const exists = "template exists: use --replace to replace it, or another name"
	refused(t, root, exitFailure, "base:1: "+exists, "template", "publish", "base:1", "--from", src)
	refused(t, root, exitFailure, "other:1: "+exists, "template", "tag", "app:1", "other:1")
	refused(t, root, exitFailure, "snap:1: "+exists, "commit", "c1", "snap:1")
	const self = "a template cannot be its own base"
	refused(t, root, exitFailure, self, "template", "publish", "app:1", "--from", src, "--on", "app:1", "--replace")
	refused(t, root, exitFailure, "base:1 is c1's template: "+self, "commit", "c1", "base:1", "--replace")
	refused(t, root, exitFailure, self, "template", "tag", "app:1", "base:1", "--replace")
	ok(t, run(t, root, nil, "template", "publish", "base:1", "--from", src, "--replace"))
	ok(t, run(t, root, nil, "template", "tag", "app:1", "other:1", "--replace"))
	ok(t, run(t, root, nil, "commit", "c1", "snap:1", "--replace"))
	var list []struct{ Name, Tag, Base string }
	if err := json.Unmarshal([]byte(ok(t, run(t, root, nil, "template", "ls", "--format", "json")).stdout), &list); err != nil {
		t.Fatal(err)
	}
	for _, tp := range list {
		if tp.Base == tp.Name+":"+tp.Tag {
			t.Errorf("template %s:%s is its own base", tp.Name, tp.Tag)
		}
		if tp.Name == "other" && tp.Base != "base:1" {
			t.Errorf("other:1 was not replaced by app:1: base %q", tp.Base)
		}
	}
}

// run --from TEMPLATE on an existing container made from another template
// is refused, naming both, and changes nothing.
func TestRunFromOtherTemplate(t *testing.T) {
	testtree.RequireRoot(t)
	root := t.TempDir()
	ok(t, run(t, root, nil, "template", "publish", "base:1", "--from", smallTree(t)))
	ok(t, run(t, root, nil, "template", "publish", "app:1", "--from", appTree(t), "--on", "base:1"))
	ok(t, run(t, root, nil, "create", "c1", "--from", "base:1"))
	refused(t, root, exitUsage, "container c1 exists, made from base:1, not app:1: run it without --from, or remove it first", "run", "--from", "app:1", "c1", "--", "/hello")
	refused(t, root, exitUsage, "container c1 exists, made from base:1, not app:1", "start", "--from", "app:1", "c1")
	// From the template it was made from, it runs (here a command that
	// is not executable: the launcher's exit code, not a usage error).
	if r := run(t, root, nil, "run", "--from", "base:1", "c1", "--", "/etc/hostname"); r.code == exitUsage || strings.Contains(r.stderr, "exists") {
		t.Errorf("run --from its own template: exit %d, %q", r.code, r.stderr)
	}
}

// Commands that read a store never create one: a mistyped --root says "no
// store at PATH" (exit 3) and leaves nothing behind; so does a directory
// that holds other files. publish makes a store, also in an empty
// directory made for it.
func TestNoStoreAtRoot(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "acetat")
	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, "notes"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"template", "ls"}, {"template", "inspect", "a:1"}, {"ps"}, {"ls"},
		{"df"}, {"fsck"}, {"gc"}, {"diff", "c1"}, {"logs", "c1"}, {"rm", "c1"}, {"create", "c1", "--from", "a:1"}} {
		r := run(t, missing, nil, args...)
		if r.code != exitNotFound || !strings.Contains(r.stderr, "no store at "+missing+": check --root") || r.stdout != "" {
			t.Errorf("%v with a missing root: exit %d, stderr %q, stdout %q", args, r.code, r.stderr, r.stdout)
		}
		if _, err := os.Stat(missing); !os.IsNotExist(err) {
			t.Fatalf("%v made %s: %v", args, missing, err)
		}
		refused(t, other, exitNotFound, "no store at "+other+" (a directory that holds other files)", args...)
	}
	empty := t.TempDir()
	ok(t, run(t, empty, nil, "template", "ls"))
	ok(t, run(t, missing, nil, "template", "publish", "a:1", "--from", smallTree(t)))
	if out := ok(t, run(t, missing, nil, "template", "ls")).stdout; !strings.Contains(out, "a:1") {
		t.Errorf("template ls after publish: %q", out)
	}
}

// A registry reference without a tag means latest; one without a registry
// is a usage error that says so.
func TestImageReference(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:5000/os/debian":      "127.0.0.1:5000/os/debian:latest",
		"127.0.0.1:5000/os/debian:12":   "127.0.0.1:5000/os/debian:12",
		"registry.example.com/debian":   "registry.example.com/debian:latest",
		"localhost/debian":              "localhost/debian:latest",
		"reg.example.com/x@sha256:abcd": "reg.example.com/x@sha256:abcd",
	} {
		if got, err := imageReference(in); err != nil || got != want {
			t.Errorf("imageReference(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"os/debian", "debian", "debian:12", "127.0.0.1:5000/", "Bad Ref"} {
		if got, err := imageReference(in); err == nil || !strings.Contains(err.Error(), "names no registry") {
			t.Errorf("imageReference(%q) = %q, %v; want a 'names no registry' error", in, got, err)
		}
	}
	root := t.TempDir()
	ok(t, run(t, root, nil, "template", "publish", "hello:1", "--from", smallTree(t)))
	refused(t, root, exitUsage, `image reference "os/debian" names no registry`, "pull", "os/debian")
	refused(t, root, exitUsage, `image reference "debian" names no registry`, "push", "hello:1", "debian")
	// With the tag defaulted, both get as far as the (absent) registry.
	for _, args := range [][]string{{"pull", "127.0.0.1:1/os/debian", "--insecure"}, {"push", "hello:1", "127.0.0.1:1/os/hello", "--insecure"}} {
		if r := run(t, root, nil, args...); r.code != exitFailure || !strings.Contains(r.stderr, "cannot reach the registry") {
			t.Errorf("%v: exit %d, %q; want 1 and 'cannot reach the registry'", args, r.code, r.stderr)
		}
	}
}

// rm takes many names, and checks them all before removing any.
func TestRmMany(t *testing.T) {
	testtree.RequireRoot(t)
	root := t.TempDir()
	ok(t, run(t, root, nil, "template", "publish", "base:1", "--from", smallTree(t)))
	for _, c := range []string{"c1", "c2", "c3"} {
		ok(t, run(t, root, nil, "create", c, "--from", "base:1"))
	}
	ok(t, run(t, root, nil, "mount", "c3"))
	t.Cleanup(func() { run(t, root, nil, "rm", "--force", "c3") })
	refused(t, root, exitNotFound, "nosuch", "rm", "c1", "nosuch", "c2")
	refused(t, root, exitFailure, "c3 is mounted at ", "rm", "c1", "c3")
	refused(t, root, exitUsage, "Bad/Name", "rm", "c1", "Bad/Name")
	ok(t, run(t, root, nil, "rm", "c1", "c2"))
	ok(t, run(t, root, nil, "rm", "--force", "c3"))
	if r := ok(t, run(t, root, nil, "ls", "--format", "json")); r.stdout != "[]\n" {
		t.Errorf("ls after rm of every container: %q", r.stdout)
	}
}

// The help texts say what the commands do (issue 19, item 13).
func TestHelpTexts(t *testing.T) {
	root := t.TempDir()
	for _, c := range []struct {
		cmd       string
		want, not []string
	}{
		{"run", []string{"under acetate's init, which is PID 1", "an existing one made from another template is refused"}, []string{"/bin/sh) as PID 1"}},
		{"rm", []string{"stop a running container and unmount a mounted one first", "acetate rm web1 web2 web3"}, []string{"unmount a mounted container first"}},
		{"mount", []string{"splits the group under the overlay driver", "the fuse driver keeps the group", "(default: the container's --driver setting, else overlay)"}, []string{"the container's, overlay"}},
		{"template rm", []string{"--force to remove the name only"}, nil},
		{"template publish", []string{"unless --replace"}, nil},
		{"commit", []string{"unless --replace"}, nil},
	} {
		// Compared with white space folded: line breaks are layout.
		out := strings.Join(strings.Fields(ok(t, run(t, root, nil, append(strings.Fields(c.cmd), "--help")...)).stdout), " ")
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("acetate %s --help does not say %q", c.cmd, w)
			}
		}
		for _, w := range c.not {
			if strings.Contains(out, w) {
				t.Errorf("acetate %s --help still says %q", c.cmd, w)
			}
		}
	}
}

// template inspect's table shows the run configuration; an exported
// tarball has mode 0666 less the umask (0644 under 022), as tar makes.
func TestInspectConfigAndExportMode(t *testing.T) {
	root := t.TempDir()
	ok(t, run(t, root, nil, "template", "publish", "a:1", "--from", smallTree(t), "--env", "A=1", "--env", "B=2",
		"--workdir", "/srv", "--user", "1:2", "--hostname", "h1", "--cmd", "/hello"))
	out := ok(t, run(t, root, nil, "template", "inspect", "a:1")).stdout
	for _, re := range []string{`(?m)^env +A=1\n +B=2$`, `(?m)^workdir +/srv$`, `(?m)^user +1:2$`, `(?m)^hostname +h1$`, `(?m)^cmd +/hello$`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("template inspect does not match %s:\n%s", re, out)
		}
	}
	dir := t.TempDir()
	defer syscall.Umask(syscall.Umask(0o022)) // the binary inherits it
	for _, name := range []string{"a.tar", "a.tar.zst"} {
		ok(t, run(t, root, nil, "template", "export", "a:1", "--to", filepath.Join(dir, name)))
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Error(err)
		} else if fi.Mode().Perm() != 0o644 {
			t.Errorf("exported %s: mode %v; want 0644 under umask 022", name, fi.Mode())
		}
	}
}

// --cpus above the machine's CPUs and --memory below 6m are refused with
// a clear message before anything is created.
func TestRunLimitsChecked(t *testing.T) {
	root := t.TempDir()
	ok(t, run(t, root, nil, "template", "publish", "a:1", "--from", smallTree(t)))
	n := goruntime.NumCPU()
	refused(t, root, exitUsage, fmt.Sprintf("--cpus %d: this machine has %d CPU(s) for acetate: give at most %d", n+1, n, n),
		"run", "--from", "a:1", "c1", "--cpus", fmt.Sprint(n+1), "--", "/hello")
	refused(t, root, exitUsage, "--memory 1k: the least is 6m", "run", "--from", "a:1", "c1", "--memory", "1k", "--", "/hello")
	refused(t, root, exitUsage, "--memory 5m: the least is 6m", "start", "--from", "a:1", "c1", "--memory", "5m")
}

// SIGINT during publish removes what the publish staged, says
// "interrupted" and exits 130; the store is as before.
func TestInterruptedPublish(t *testing.T) {
	testtree.RequireRoot(t)
	src := testtree.DebianRootfs(t)
	root := t.TempDir()
	ok(t, run(t, root, nil, "template", "publish", "base:1", "--from", smallTree(t)))
	before := listing(t, root)
	cmd := exec.Command(binary, "--root", root, "template", "publish", "debian:12", "--from", src)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Interrupt it once it has staged something.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if tmp, _ := os.ReadDir(filepath.Join(root, "tmp")); len(tmp) > 0 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("publish staged nothing in 20 s")
		}
	}
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	if ee, isExit := err.(*exec.ExitError); !isExit || ee.ExitCode() != exitInterrupted ||
		!strings.Contains(stderr.String(), "interrupted: nothing was published, and the files this publish staged are removed") {
		t.Fatalf("publish interrupted: %v, stderr %q; want exit 130 and 'interrupted'", err, stderr.String())
	}
	if after := listing(t, root); after != before {
		t.Errorf("an interrupted publish changed the store:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// df counts what tmp/ holds; a later publish removes the objects and layer
// directories that a killed writer staged, and keeps those of a writer
// that runs.
func TestStaleStaging(t *testing.T) {
	root := t.TempDir()
	ok(t, run(t, root, nil, "template", "publish", "base:1", "--from", smallTree(t)))
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(root, "tmp", fmt.Sprintf("object-%d-1", dead.Process.Pid))
	live := filepath.Join(root, "tmp", fmt.Sprintf("object-%d-1", os.Getpid()))
	for _, p := range []string{stale, live} {
		if err := os.WriteFile(p, make([]byte, 64<<10), 0o444); err != nil {
			t.Fatal(err)
		}
	}
	var df struct {
		Templates struct{ TempFiles, TempBytes int64 }
	}
	if err := json.Unmarshal([]byte(ok(t, run(t, root, nil, "df", "--format", "json")).stdout), &df); err != nil ||
		df.Templates.TempFiles != 2 || df.Templates.TempBytes < 128<<10 {
		t.Errorf("df of a store with two staged files: %v %+v", err, df)
	}
	if out := ok(t, run(t, root, nil, "df")).stdout; !regexp.MustCompile(`(?m)^staging \(tmp/\) +2 +- +1[0-9.]+kB`).MatchString(out) {
		t.Errorf("df does not show tmp/:\n%s", out)
	}
	// A layer directory staged by a writer killed before its rename
	// (layer-PID-N, holding the manifest).
	staleLayer := filepath.Join(root, "tmp", fmt.Sprintf("layer-%d-1", dead.Process.Pid))
	liveLayer := filepath.Join(root, "tmp", fmt.Sprintf("layer-%d-1", os.Getpid()))
	for _, p := range []string{staleLayer, liveLayer} {
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p, "manifest"), []byte("x"), 0o444); err != nil {
			t.Fatal(err)
		}
	}
	ok(t, run(t, root, nil, "template", "publish", "other:1", "--from", smallTree(t)))
	for _, p := range []string{stale, staleLayer} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("publish left %s, staged by a dead writer: %v", filepath.Base(p), err)
		}
	}
	for _, p := range []string{live, liveLayer} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("publish removed %s, staged by a running writer: %v", filepath.Base(p), err)
		}
	}
}

// Rebasing a container of an application template onto a bare base would
// drop the application's layer: refused unless --force; onto the
// application re-published on the new base, or from an OS template, it
// goes through.
func TestRebaseKeepsApplication(t *testing.T) {
	testtree.RequireRoot(t)
	root := t.TempDir()
	patched := smallTree(t)
	if err := os.WriteFile(filepath.Join(patched, "etc/patch"), []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ok(t, run(t, root, nil, "template", "publish", "base:1", "--from", smallTree(t)))
	ok(t, run(t, root, nil, "template", "publish", "base:2", "--from", patched))
	ok(t, run(t, root, nil, "template", "publish", "app:1", "--from", appTree(t), "--on", "base:1"))
	ok(t, run(t, root, nil, "template", "publish", "app:2", "--from", appTree(t), "--on", "base:2"))
	for _, c := range []string{"a1", "a2", "a3"} {
		ok(t, run(t, root, nil, "create", c, "--from", "app:1"))
	}
	ok(t, run(t, root, nil, "create", "b1", "--from", "base:1"))
	refused(t, root, exitFailure, "a1 is from app:1 on base:1; base:2 stands on fewer bases: rebasing would drop the layers of app:1;", "rebase", "a1", "base:2")
	ok(t, run(t, root, nil, "rebase", "a2", "app:2"))
	ok(t, run(t, root, nil, "rebase", "b1", "base:2"))
	ok(t, run(t, root, nil, "rebase", "a3", "base:2", "--force"))
}

// template rebase re-stacks an application template's layer on a patched
// base: the application's files stay its own, the rest comes from the new
// base, paths changed on both sides are listed.
func TestTemplateRebase(t *testing.T) {
	root := t.TempDir()
	patched, app := smallTree(t), appTree(t)
	for _, f := range []struct{ path, data string }{{patched + "/hello", "patched\n"}, {patched + "/etc/patch", "1\n"}, {app + "/hello", "app\n"}} {
		if err := os.WriteFile(f.path, []byte(f.data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	orig := smallTree(t)
	for _, dir := range []string{orig, patched, app} { // only what the test changes differs
		filepath.Walk(dir, func(p string, _ os.FileInfo, _ error) error {
			return os.Chtimes(p, time.Unix(1e9, 0), time.Unix(1e9, 0))
		})
	}
	ok(t, run(t, root, nil, "template", "publish", "base:1", "--from", orig))
	ok(t, run(t, root, nil, "template", "publish", "base:2", "--from", patched))
	ok(t, run(t, root, nil, "template", "publish", "app:1", "--from", app, "--on", "base:1", "--cmd", "/app"))
	refused(t, root, exitFailure, "rebase base:1: it has no base", "template", "rebase", "base:1", "--onto", "base:2", "x:1")
	refused(t, root, exitUsage, "--onto BASE[:TAG] is required", "template", "rebase", "app:1", "x:1")
	refused(t, root, exitNotFound, "nope:1", "template", "rebase", "app:1", "--onto", "nope:1", "x:1")
	refused(t, root, exitFailure, "app:1: template exists", "template", "rebase", "app:1", "--onto", "base:2", "app:1")
	r := ok(t, run(t, root, nil, "template", "rebase", "app:1", "--onto", "base:2", "app:2"))
	if r.stdout != "app:2: app:1 re-stacked on base:2, 1 path(s) changed on both sides (kept the application's)\nboth changed: /hello\n" {
		t.Errorf("template rebase: %q", r.stdout)
	}
	out := filepath.Join(t.TempDir(), "out")
	ok(t, run(t, root, nil, "template", "export", "app:2", "--to", out))
	for path, want := range map[string]string{"hello": "app\n", "app": "app\n", "etc/patch": "1\n", "etc/hostname": "box\n"} {
		if b, err := os.ReadFile(filepath.Join(out, path)); err != nil || string(b) != want {
			t.Errorf("app:2 /%s: %q, %v; want %q", path, b, err, want)
		}
	}
	var in struct {
		Base   string
		Config struct{ Cmd []string }
	}
	if err := json.Unmarshal([]byte(ok(t, run(t, root, nil, "template", "inspect", "app:2", "--format", "json")).stdout), &in); err != nil ||
		in.Base != "base:2" || !slices.Equal(in.Config.Cmd, []string{"/app"}) {
		t.Errorf("app:2: %v %+v; want base base:2 and app:1's command", err, in)
	}
}

// logs --tail N prints the last N lines of a detached container's output.
func TestLogsTail(t *testing.T) {
	root := debianStore(t)
	ok(t, run(t, root, nil, "start", "--from", "debian", "c1", "--", "sh", "-c", "printf '1\\n2\\n3\\n4\\nend'"))
	t.Cleanup(func() { run(t, root, nil, "rm", "--force", "c1") })
	waitExited(t, root, "c1")
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "1\n2\n3\n4\nend"},
		{[]string{"--tail", "2"}, "4\nend"},
		{[]string{"-n", "0"}, ""},
		{[]string{"--tail", "9"}, "1\n2\n3\n4\nend"},
		{[]string{"--tail", "1", "-f"}, "end"},
	} {
		if r := ok(t, run(t, root, nil, append([]string{"logs", "c1"}, c.args...)...)); r.stdout != c.want {
			t.Errorf("logs %v: %q, want %q", c.args, r.stdout, c.want)
		}
	}
	refused(t, root, exitUsage, "--tail -2: give a number of lines, or -1 for all", "logs", "c1", "--tail", "-2")
}

// waitExited waits until the detached container name has exited.
func waitExited(t *testing.T, root, name string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ps(t, root)[name].State != "exited"; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not exit in 10 s", name)
		}
	}
}

// logs writes a container's stdout lines to stdout and its stderr lines
// to stderr; --timestamps starts each with its RFC 3339 time; --since and
// --until (a duration or a time) print the lines logged in between, and
// refuse other values (exit 2).
func TestLogsStreams(t *testing.T) {
	root := debianStore(t)
	ok(t, run(t, root, nil, "start", "--from", "debian", "c1", "--", "sh", "-c", "echo o1; sleep 0.1; echo e1 >&2; sleep 1; echo o2; sleep 0.1; echo e2 >&2"))
	t.Cleanup(func() { run(t, root, nil, "rm", "--force", "c1") })
	waitExited(t, root, "c1")
	if r := ok(t, run(t, root, nil, "logs", "c1")); r.stdout != "o1\no2\n" || r.stderr != "e1\ne2\n" {
		t.Errorf("logs: stdout %q, stderr %q; want o1 o2 and e1 e2", r.stdout, r.stderr)
	}
	r := ok(t, run(t, root, nil, "logs", "c1", "--timestamps"))
	stamped := regexp.MustCompile(`^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z) (o1|o2|e1|e2)$`)
	times := map[string]string{}
	for _, line := range strings.Split(strings.TrimSuffix(r.stdout+r.stderr, "\n"), "\n") {
		m := stamped.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("logs --timestamps: line %q; stdout %q, stderr %q", line, r.stdout, r.stderr)
		}
		times[m[3]] = m[1]
	}
	for _, c := range []struct {
		args           []string
		stdout, stderr string
	}{
		{[]string{"--since", times["o2"]}, "o2\n", "e2\n"},
		{[]string{"--until", times["e1"]}, "o1\n", "e1\n"},
		{[]string{"--since", times["e1"], "--until", times["o2"]}, "o2\n", "e1\n"},
		{[]string{"--since", "1h", "--tail", "1"}, "", "e2\n"},
		{[]string{"--until", "1h"}, "", ""},
		{[]string{"--since", "0s", "-f"}, "", ""},
	} {
		if r := ok(t, run(t, root, nil, append([]string{"logs", "c1"}, c.args...)...)); r.stdout != c.stdout || r.stderr != c.stderr {
			t.Errorf("logs %v: stdout %q, stderr %q; want %q, %q", c.args, r.stdout, r.stderr, c.stdout, c.stderr)
		}
	}
	refused(t, root, exitUsage, `--since "yesterday": give a duration before now (10m, 1h30m) or a time`, "logs", "c1", "--since", "yesterday")
	refused(t, root, exitUsage, `--until "-5m": give a duration`, "logs", "c1", "--until", "-5m")
}

// logs -f prints what a running container writes after logs started, on
// each stream, with --since and --timestamps too, and ends with it.
func TestLogsFollow(t *testing.T) {
	root := debianStore(t)
	ok(t, run(t, root, nil, "start", "--from", "debian", "c1", "--", "sh", "-c", "echo before; sleep 2; echo after; echo late >&2"))
	t.Cleanup(func() { run(t, root, nil, "rm", "--force", "c1") })
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(run(t, root, nil, "logs", "c1").stdout, "before"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("c1 wrote nothing in 10 s")
		}
	}
	r := ok(t, run(t, root, nil, "logs", "c1", "-f", "--since", "0s", "--timestamps"))
	if !regexp.MustCompile(`^\S+Z after\n$`).MatchString(r.stdout) || !regexp.MustCompile(`^\S+Z late\n$`).MatchString(r.stderr) {
		t.Errorf("logs -f --since 0s --timestamps: stdout %q, stderr %q; want after and late, stamped", r.stdout, r.stderr)
	}
	if st := ps(t, root)["c1"].State; st == "running" {
		t.Errorf("logs -f returned while c1 was %s", st)
	}
}

// A log written before records (both streams in one, no times) still
// prints, all to stdout; --since leaves its timeless lines out.
func TestLogsPlainFormat(t *testing.T) {
	root := debianStore(t)
	ok(t, run(t, root, nil, "create", "c1", "--from", "debian"))
	dir := filepath.Join(root, "containers", "c1", "run")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "log"), []byte("out 1\nerr 1\nlast"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "out 1\nerr 1\nlast"},
		{[]string{"--timestamps", "--tail", "2"}, "err 1\nlast"},
		{[]string{"--since", "1h"}, ""},
	} {
		if r := ok(t, run(t, root, nil, append([]string{"logs", "c1"}, c.args...)...)); r.stdout != c.want || r.stderr != "" {
			t.Errorf("logs %v of a plain log: stdout %q, stderr %q; want %q", c.args, r.stdout, r.stderr, c.want)
		}
	}
}

// The README's commands and the .ci scripts run as root without sudo,
// which a minimal Debian lacks; only the benchmarks a user runs write
// /proc/sys/vm/drop_caches (acetate bench, when allowed, and the fuse
// package's Go benchmarks), never a test.
func TestNoSudoNoDropCaches(t *testing.T) {
	writesDropCaches := regexp.MustCompile(`(WriteFile|OpenFile|Create)\(\s*"/proc/sys/vm/drop_caches"|>\s*/proc/sys/vm/drop_caches`)
	repo := filepath.Join("..", "..")
	sudo := regexp.MustCompile(`(?m)(^|[\s;&|(\x60])sudo\s+[\w./-]`) // \x60: a backquote
	for _, f := range []string{"README.md", "bench/RESULTS.md", ".ci/demo", ".ci/test", ".ci/run", ".ci/setup"} {
		b, err := os.ReadFile(filepath.Join(repo, f))
		if err != nil {
			t.Fatal(err)
		}
		if m := sudo.Find(b); m != nil {
			t.Errorf("%s runs sudo: %q", f, m)
		}
	}
	allowed := map[string]bool{"bench/env.go": true, "fs/fuse/bench_test.go": true}
	found := 0
	err := filepath.WalkDir(repo, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		script := strings.HasSuffix(p, ".sh") || filepath.Base(filepath.Dir(p)) == ".ci"
		if d.IsDir() || !strings.HasSuffix(p, ".go") && !script || strings.HasSuffix(p, "cli_test.go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil || !writesDropCaches.Match(b) {
			return err
		}
		rel, _ := filepath.Rel(repo, p)
		if found++; !allowed[rel] {
			t.Errorf("%s writes /proc/sys/vm/drop_caches: only bench code a user runs may", rel)
		}
		return nil
	})
	if err != nil || found == 0 {
		t.Fatalf("walk of the repository: %v, %d files found writing drop_caches (want bench's)", err, found)
	}
}

// The mount points the launcher makes in a container whose template lacks
// them (/dev, /proc, /sys) are neither in diff nor in a committed template;
// what the container itself adds still is.
func TestDiffLeavesOutLauncherMountPoints(t *testing.T) {
	testtree.RequireRoot(t)
	root := t.TempDir()
	ok(t, run(t, root, nil, "template", "publish", "base:1", "--from", smallTree(t)))
	if r := run(t, root, nil, "run", "c1", "--from", "base:1", "--", "/nosuch"); r.code != 127 {
		t.Fatalf("run /nosuch: exit %d, want 127: %s", r.code, r.stderr)
	}
	if r := ok(t, run(t, root, nil, "diff", "c1")); r.stdout != "" {
		t.Errorf("diff after a run: %q, want nothing", r.stdout)
	}
	ok(t, run(t, root, nil, "commit", "c1", "base:2"))
	out := filepath.Join(t.TempDir(), "tree")
	ok(t, run(t, root, nil, "template", "export", "base:2", "--to", out))
	names, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 2 { // etc, hello
		t.Errorf("committed template holds %v, want etc and hello only", names)
	}
	if err := os.Mkdir(filepath.Join(root, "containers/c1/upper/proc/own"), 0o755); err != nil {
		t.Fatal(err)
	}
	if r := ok(t, run(t, root, nil, "diff", "c1")); r.stdout != "C /\t0B\nA /proc\t0B\nA /proc/own\t0B\n" {
		t.Errorf("diff after a change in /proc: %q", r.stdout)
	}
}
