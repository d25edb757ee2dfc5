package runtime

import (
	"testing"
	"time"
)

func TestParseRestartPolicy(t *testing.T) {
	for in, want := range map[string]string{"": "no", "no": "no", "always": "always", "unless-stopped": "unless-stopped",
		"on-failure": "on-failure", "on-failure:3": "on-failure:3", "on-failure:0": "on-failure"} {
		p, err := ParseRestartPolicy(in)
		if err != nil || p.String() != want {
			t.Errorf("ParseRestartPolicy(%q) = %v, %v; want %s", in, p, err, want)
		}
	}
	for _, bad := range []string{"sometimes", "always:2", "on-failure:x", "on-failure:-1"} {
		if _, err := ParseRestartPolicy(bad); err == nil {
			t.Errorf("ParseRestartPolicy(%q) accepted", bad)
		}
	}
}

// The supervisor restarts a failing command as its policy says: on-failure:2
// gives up after two restarts, with the last exit code.
func TestRestartOnFailure(t *testing.T) {
	dir, _ := startTest(t, Spec{Args: []string{"sh", "-c", "exit 3"}, Restart: RestartPolicy{Name: RestartOnFailure, MaxRetries: 2}})
	waitFor(t, "the supervisor to give up", func() bool {
		locked, err := isLocked(dir)
		return err == nil && !locked
	})
	if e := readExit(t, dir); e.Code != 3 || e.Restarts != 2 {
		t.Errorf("exit %+v, want code 3 after 2 restarts", e)
	}
}

// Stop ends a container whose supervisor is between two restarts (locked, no
// pid) at once, and no restart follows.
func TestStopBetweenRestarts(t *testing.T) {
	dir, _ := startTest(t, Spec{Args: []string{"sh", "-c", "exit 1"}, Restart: RestartPolicy{Name: RestartAlways}})
	waitFor(t, "a restart", func() bool {
		st, err := LoadState(dir)
		return err == nil && st.Exit != nil && st.Exit.Restarts > 0
	})
	begin := time.Now()
	if err := Stop(dir, time.Second); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(begin); d > 2*time.Second {
		t.Errorf("Stop took %v", d)
	}
	if locked, _ := isLocked(dir); locked {
		t.Error("the supervisor still holds the container after Stop")
	}
	st, err := LoadState(dir)
	if err != nil || st.Running || !st.Stopped {
		t.Errorf("after Stop: %+v, %v; want stopped", st, err)
	}
}
