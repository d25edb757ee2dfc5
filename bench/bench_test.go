package bench_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/acetate/acetate/bench"
	"github.com/acetate/acetate/fs/fuse"
	"github.com/acetate/acetate/runtime"
)

// The test binary stands in for acetate when the fuse driver and the
// launcher re-execute it, as acetate's main does.
func TestMain(m *testing.M) {
	fuse.ServeIfRequested()
	runtime.InitMain()
	os.Exit(m.Run())
}

// A quick run writes a report in which every scenario appears, every
// figure has a unit, and is either measured with sane samples or skipped
// with a reason; the charts and tables exist.
func TestQuickReport(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("bench needs root")
	}
	out := t.TempDir()
	// The boot scenario has its test, TestBootScenario.
	all := slices.DeleteFunc(bench.Scenarios(), func(s string) bool { return s == "boot" })
	if _, err := bench.Run(context.Background(), bench.Options{Quick: true, Out: out, Work: t.TempDir(), Scenarios: all}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(out, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r bench.Report
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	tools := map[string]bool{}
	cold := 0
	for _, f := range r.Figures {
		seen[f.Scenario] = true
		tools[f.Tool] = true
		if f.Unit != "s" && f.Unit != "B" {
			t.Errorf("%s/%s/%s: unit %q", f.Scenario, f.Case, f.Tool, f.Unit)
		}
		switch f.Status {
		case bench.Measured:
			if len(f.Samples) == 0 || f.Median <= 0 || f.Min > f.Median || f.Median > f.Max {
				t.Errorf("%s/%s/%s: bad figure %+v", f.Scenario, f.Case, f.Tool, f)
			}
			if f.Unit == "s" && len(f.Samples) < 2 {
				t.Errorf("%s/%s/%s: a single timing", f.Scenario, f.Case, f.Tool)
			}
		case bench.Skipped:
			if f.Reason == "" {
				t.Errorf("%s/%s/%s: skipped without a reason", f.Scenario, f.Case, f.Tool)
			}
		default:
			t.Errorf("%s/%s/%s: status %q", f.Scenario, f.Case, f.Tool, f.Status)
		}
		// The test never drops the host's page cache: cold cases are
		// skipped, and say why.
		if !strings.HasSuffix(f.Case, ", cold") {
			continue
		}
		cold++
		if f.Status != bench.Skipped || !strings.Contains(f.Reason, "page cache") {
			t.Errorf("%s/%s/%s: a cold case ran without Options.DropCaches: %s %q", f.Scenario, f.Case, f.Tool, f.Status, f.Reason)
		}
	}
	if cold == 0 {
		t.Error("the report has no cold-cache case")
	}
	for _, s := range []string{"publish", "disk", "clone", "read", "write", "start"} {
		if !seen[s] {
			t.Errorf("scenario %s is missing from the report", s)
		}
	}
	for _, tool := range []string{"acetate publish", "ostree commit (bare)", "acetate overlay", "kernel overlayfs", "fuse-overlayfs", "acetate run", "bwrap", "crun", "runc"} {
		if !tools[tool] {
			t.Errorf("peer %q is missing from the report", tool)
		}
	}
	for _, f := range []string{"report.md", "disk-vs-containers.svg", "clone-create.svg"} {
		if fi, err := os.Stat(filepath.Join(out, f)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	if !slices.ContainsFunc(r.Figures, func(f bench.Figure) bool {
		return f.Scenario == "start" && f.Tool == "acetate run" && f.Status == bench.Measured
	}) {
		t.Error("acetate run was not measured")
	}
}

// Run refuses unknown scenarios.
func TestUnknownScenario(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("bench needs root")
	}
	_, err := bench.Run(context.Background(), bench.Options{Quick: true, Scenarios: []string{"nope"}})
	if err == nil {
		t.Fatal("an unknown scenario was accepted")
	}
}
