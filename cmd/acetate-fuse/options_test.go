package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseArgs(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"l1", "l2", "u", "w", "m"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	abs := func(names ...string) []string {
		var out []string
		for _, n := range names {
			out = append(out, filepath.Join(dir, n))
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		args  []string
		want  config
		warns []string
	}{
		{"fuse-overlayfs form", []string{"-f", "-o", "lowerdir=l1:l2,upperdir=u,workdir=w", "m"},
			config{foreground: true, lower: abs("l1", "l2"), upper: abs("u")[0], work: abs("w")[0], target: abs("m")[0]}, nil},
		{"mount.fuse3 form", []string{"src", "m", "-o", "rw,lowerdir=l1,upperdir=u,workdir=w,dev,suid"},
			config{lower: abs("l1"), upper: abs("u")[0], work: abs("w")[0], target: abs("m")[0]}, nil},
		{"read-only without upperdir, -o joined and repeated", []string{"-olowerdir=l2", "-o", "lowerdir=l1::l2,squash_to_root", "m"},
			config{lower: abs("l1", "l2"), readOnly: true, target: abs("m")[0]}, []string{`"squash_to_root"`}},
		{"ro and debug", []string{"-d", "-o", "lowerdir=l1,upperdir=u,workdir=w,ro,allow_other,default_permissions", "m"},
			config{foreground: true, debug: true, readOnly: true, lower: abs("l1"), upper: abs("u")[0], work: abs("w")[0], target: abs("m")[0]}, nil},
		{"help", []string{"--help"}, config{help: true}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var warn bytes.Buffer
			c, err := parseArgs(tc.args, &warn)
			if err != nil {
				t.Fatal(err)
			}
			if c.foreground != tc.want.foreground || c.debug != tc.want.debug || c.help != tc.want.help ||
				c.readOnly != tc.want.readOnly || !slices.Equal(c.lower, tc.want.lower) ||
				c.upper != tc.want.upper || c.work != tc.want.work || c.target != tc.want.target {
				t.Errorf("got %+v, want %+v", *c, tc.want)
			}
			for _, w := range tc.warns {
				if !strings.Contains(warn.String(), w) {
					t.Errorf("warnings %q lack %s", warn.String(), w)
				}
			}
			if tc.warns == nil && warn.Len() > 0 {
				t.Errorf("unexpected warnings: %s", warn.String())
			}
		})
	}
}

func TestParseArgsErrors(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for _, d := range []string{"l", "u", "w", "m"} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile("file", nil, 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"m"}, "option lowerdir: missing"},
		{[]string{"-o", "lowerdir=l"}, "no mount point"},
		{[]string{"-o", "lowerdir=l", "a", "b", "m"}, "too many arguments"},
		{[]string{"-o", "lowerdir=l,upperdir=u", "m"}, "upperdir and workdir"},
		{[]string{"-o", "lowerdir=l:missing", "m"}, "lowerdir: stat"},
		{[]string{"-o", "lowerdir=l,upperdir=file,workdir=w", "m"}, "upperdir " + filepath.Join(dir, "file") + ": not a directory"},
		{[]string{"-o", "lowerdir=l", "missing"}, "mount point: stat"},
		{[]string{"-o", "lowerdir=:", "m"}, "option lowerdir: no directory"},
		{[]string{"m", "-o"}, "-o: needs an option list"},
	} {
		_, err := parseArgs(tc.args, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one containing %q", tc.args, err, tc.want)
		}
	}
}

// Bad arguments exit 2 with the usage and mount nothing.
func TestRunUsage(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-o", "upperdir=/nonexistent", "/nonexistent"}, &stdout, &stderr); code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	if !strings.Contains(stderr.String(), "lowerdir") || !strings.Contains(stderr.String(), "Usage:") {
		t.Errorf("stderr %q names neither the argument nor the usage", stderr.String())
	}
	stdout.Reset()
	if code := run([]string{"--version"}, &stdout, &stderr); code != 0 || !strings.HasPrefix(stdout.String(), "acetate-fuse version ") {
		t.Errorf("--version: exit %d, %q", code, stdout.String())
	}
}
