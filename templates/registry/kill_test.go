package registry

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/acetate/acetate/internal/treecmp"
	"github.com/acetate/acetate/templates"
	"github.com/acetate/acetate/templates/oci/ocitest"
	"github.com/acetate/acetate/templates/storetest"
)

// childEnv makes the test binary a pull that a test kills: its value is
// "STORE SOURCE COMMIT-EVERY". SIGTERM cancels the pull, as in the CLI.
const childEnv = "ACETATE_TEST_PULL_CHILD"

func TestMain(m *testing.M) {
	if arg := os.Getenv(childEnv); arg != "" {
		os.Exit(childPull(strings.Fields(arg)))
	}
	os.Exit(m.Run())
}

func childPull(args []string) int {
	every, err := time.ParseDuration(args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	commitEvery = every
	st, err := templates.Open(args[0])
	if err == nil {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		defer stop()
		_, err = Pull(ctx, st, args[1], templates.MustParseRef("many:1"), insecure)
	}
	fmt.Fprintln(os.Stderr, err)
	return 1
}

// stallAfter passes a body on until the responses together have passed
// limit bytes, and then sends nothing more until the request is gone.
type stallAfter struct {
	io.ReadCloser
	req    *http.Request
	passed *atomic.Int64
	limit  int64
}

func (s *stallAfter) Read(b []byte) (int, error) {
	if s.passed.Load() >= s.limit {
		<-s.req.Context().Done()
		return 0, s.req.Context().Err()
	}
	n, err := s.ReadCloser.Read(b[:min(len(b), 4096)])
	s.passed.Add(int64(n))
	return n, err
}

// A pull killed halfway, behind a registry that stalls after 1 MiB of a
// 2 MiB template, keeps the objects it had verified: with kill -9 (which
// nothing can catch) those a periodic commit saved, with SIGTERM all of
// them (the cancelled pull commits them; periodic commits are off). The
// second pull fetches only the rest and leaves nothing in the store's tmp/
// (not even what the killed pull staged), and the template equals its
// source.
func TestPullKilledKeepsObjects(t *testing.T) {
	reg := startRegistry(t)
	dir := pushRandom(t, reg, "many:1", 64)
	p := startProxy(t, reg)
	const whole, stallAt = 64 * BigObject, 1 << 20
	for sig, every := range map[syscall.Signal]string{syscall.SIGKILL: "1s", syscall.SIGTERM: "1h"} {
		t.Run(sig.String(), func(t *testing.T) {
			var passed atomic.Int64
			p.setChange(func(_ *http.Request, resp *http.Response) {
				if isBlobGet(resp.Request) {
					resp.Body = &stallAfter{ReadCloser: resp.Body, req: resp.Request, passed: &passed, limit: stallAt}
				}
			})
			st := ocitest.NewStore(t)
			killPull(t, st, p.addr+"/acetate/many:1", every, sig, func() bool { return passed.Load() >= stallAt })
			p.setChange(nil)
			storetest.FsckClean(t, st)
			before := p.bytes.Load()
			tp := pull(t, st, p.addr+"/acetate/many:1", "many:1")
			second := p.bytes.Load() - before
			t.Logf("killed after %d bytes with %v; the second pull fetched %d bytes of %d", passed.Load(), sig, second, whole)
			if second > whole-stallAt*3/4 {
				t.Errorf("the second pull fetched %d bytes: the first pull's %d were not kept", second, passed.Load())
			}
			storetest.TmpEmpty(t, st)
			if err := treecmp.Compare(dir, exportDir(t, st, tp), treecmp.Options{IgnoreDirMtime: true}); err != nil {
				t.Fatal(err)
			}
			storetest.FsckClean(t, st)
		})
	}
}

// A pull killed with kill -9 before it committed anything leaves what it
// staged in tmp/; the next pull removes it, and tmp/ is empty afterwards.
func TestPullAfterKillLeavesNoStaging(t *testing.T) {
	reg := startRegistry(t)
	pushRandom(t, reg, "many:1", 64)
	p := startProxy(t, reg)
	const stallAt = 1 << 20
	var passed atomic.Int64
	p.setChange(func(_ *http.Request, resp *http.Response) {
		if isBlobGet(resp.Request) {
			resp.Body = &stallAfter{ReadCloser: resp.Body, req: resp.Request, passed: &passed, limit: stallAt}
		}
	})
	st := ocitest.NewStore(t)
	killPull(t, st, p.addr+"/acetate/many:1", "1h", syscall.SIGKILL, func() bool { return passed.Load() >= stallAt })
	p.setChange(nil)
	if left, err := os.ReadDir(st.Layers.TmpDir()); err != nil || len(left) == 0 {
		t.Fatalf("the killed pull left nothing staged (%v): the case tests nothing", err)
	}
	pull(t, st, p.addr+"/acetate/many:1", "many:1")
	storetest.TmpEmpty(t, st)
	storetest.FsckClean(t, st)
}

// killPull runs a pull of src into st in a child process, waits until
// stalled reports the transfer stalled and three seconds more, and sends
// sig.
func killPull(t *testing.T, st *templates.Store, src, commitEvery string, sig syscall.Signal, stalled func() bool) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+st.Layers.Root()+" "+src+" "+commitEvery)
	var out strings.Builder
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); !stalled(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("the pull never got to the stall: %s", out.String())
		}
	}
	time.Sleep(3 * time.Second) // three periodic commits of the kill -9 case
	if err := cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	t.Logf("the killed pull said: %s", strings.TrimSpace(out.String()))
}
