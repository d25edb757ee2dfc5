package main

import (
	"os/exec"
	"strings"
	"testing"

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
