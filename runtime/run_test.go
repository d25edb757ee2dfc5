package runtime

import (
	"strings"
	"testing"

	"github.com/acetate/acetate/internal/testtree"
)

func TestRunEcho(t *testing.T) {
	r := sh(t, "echo hello; echo oops >&2; exit 3")
	if r.code != 3 || r.stdout != "hello\n" || r.stderr != "oops\n" {
		t.Fatalf("got %+v", r)
	}
}

// The command is the container's PID 1, alone: nothing of acetate's is in
// the container.
func TestRunCommandIsPID1(t *testing.T) {
	r := sh(t, `echo $$; echo /proc/[0-9]*`)
	if r.code != 0 || r.stdout != "1\n/proc/1\n" {
		t.Fatalf("got %+v, want the shell as PID 1, alone", r)
	}
}

// With Init, acetate's init is PID 1 and the command its child.
func TestRunPID1IsInit(t *testing.T) {
	r := sh(t, `cat /proc/1/comm; echo $$; echo /proc/[0-9]*`, func(s *Spec) { s.Init = true })
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

// A binary that does not call InitMain runs its ordinary main instead of
// the init: the start must fail with a hint, not pass for an exit code.
func TestHelperThatIsNoHelper(t *testing.T) {
	testtree.RequireRoot(t)
	for _, waitReady := range []bool{false, true} {
		cmd := newHelperCmd("not-a-helper", "__probe")
		cmd.Args = append(cmd.Args, "noop") // exits 0 without a word
		p, err := startHelper(cmd, message{Spec: &Spec{}}, nil, false, waitReady, false, nil, nil)
		if err == nil {
			_, err = p.wait()
		}
		if err == nil || !strings.Contains(err.Error(), "InitMain") {
			t.Errorf("waitReady=%v: %v, want an error naming InitMain", waitReady, err)
		}
	}
}
