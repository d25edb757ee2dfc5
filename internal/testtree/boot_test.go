package testtree

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBootTrees checks what .ci/setup promises of the booting trees: the
// service's page, its enabling link, the hostname and an empty machine-id.
func TestBootTrees(t *testing.T) {
	for _, tc := range []struct {
		name    string
		rootfs  func(testing.TB) string
		enabled string // a glob for the link that starts the service at boot
	}{
		{"systemd", SystemdRootfs, "etc/systemd/system/multi-user.target.wants/acetate-test-http.service"},
		{"sysvinit", SysvinitRootfs, "etc/rc2.d/S[0-9][0-9]acetate-test-http"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := tc.rootfs(t)
			read := func(p string) string {
				t.Helper()
				b, err := os.ReadFile(filepath.Join(dir, p))
				if err != nil {
					t.Fatal(err)
				}
				return string(b)
			}
			if got := read("srv/www/index.html"); got != ServiceAnswer {
				t.Errorf("index.html = %q, want %q", got, ServiceAnswer)
			}
			if got := strings.TrimSpace(read("etc/hostname")); got != TemplateHostname {
				t.Errorf("hostname = %q, want %q", got, TemplateHostname)
			}
			if got := read("etc/machine-id"); got != "" {
				t.Errorf("machine-id = %q, want empty", got)
			}
			if m, _ := filepath.Glob(filepath.Join(dir, tc.enabled)); len(m) != 1 {
				t.Errorf("service not enabled: %s matches %q", tc.enabled, m)
			}
		})
	}
}
