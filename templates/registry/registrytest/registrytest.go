// Package registrytest runs a real OCI registry for tests and benchmarks:
// Debian's docker-registry (the distribution project's registry) on a
// loopback port, with its storage in a directory of the caller's.
package registrytest

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acetate/acetate/internal/testtree"
)

// Start runs docker-registry on a free 127.0.0.1 port (see Run), stops it
// at the test's cleanup, and returns its host:port. It skips the test when
// the binary is not installed or the test does not run as root.
func Start(t testing.TB) string {
	t.Helper()
	testtree.RequireRoot(t)
	if _, err := exec.LookPath("docker-registry"); err != nil {
		t.Skip("docker-registry (Debian package docker-registry) is not installed")
	}
	addr, stop, err := Run(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return addr
}

// Run runs docker-registry on a free 127.0.0.1 port with its configuration,
// storage and log in dir, waits until it answers, and returns its
// host:port and the function that stops it.
func Run(dir string) (addr string, stop func(), err error) {
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		return "", nil, fmt.Errorf("docker-registry (Debian package docker-registry) is not installed: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return "", nil, err
	}
	addr = fmt.Sprintf("127.0.0.1:%d", port)
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n", filepath.Join(dir, "data"), addr)
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(cfg), 0o600); err != nil {
		return "", nil, err
	}
	log, err := os.Create(filepath.Join(dir, "log"))
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(bin, "serve", filepath.Join(dir, "config.yml"))
	cmd.Stdout, cmd.Stderr = log, log
	for _, kv := range os.Environ() { // the registry reads REGISTRY_* as configuration
		if !strings.HasPrefix(kv, "REGISTRY_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	if err := cmd.Start(); err != nil {
		log.Close()
		return "", nil, err
	}
	stop = func() {
		cmd.Process.Kill()
		cmd.Wait()
		log.Close()
	}
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return addr, stop, nil
			}
		}
	}
	stop()
	out, _ := os.ReadFile(filepath.Join(dir, "log"))
	return "", nil, fmt.Errorf("docker-registry did not answer on %s:\n%s", addr, out)
}

// freePort returns a loopback port free at the moment.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
