package runtime

import (
	"strings"
	"testing"
)

func TestRunEcho(t *testing.T) {
	r := sh(t, "echo hello; echo oops >&2; exit 3")
	if r.code != 3 || r.stdout != "hello\n" || r.stderr != "oops\n" {
		t.Fatalf("got %+v", r)
	}
}

func TestRunPID1IsInit(t *testing.T) {
	r := sh(t, `cat /proc/1/comm; echo $$; echo /proc/[0-9]*`)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != 3 {
		t.Fatalf("got %+v", r)
	}
	if lines[0] != "acetate-init" {
		t.Errorf("PID 1 is %q, want acetate-init", lines[0])
	}
	if lines[1] == "1" {
		t.Errorf("the command is PID 1, want it to run under init")
	}
	if lines[2] != "/proc/1 /proc/"+lines[1] {
		t.Errorf("/proc shows %q, want only init and the shell", lines[2])
	}
}
