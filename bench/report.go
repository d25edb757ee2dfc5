package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Status says whether a figure was measured.
type Status string

// Figure statuses.
const (
	Measured Status = "measured"
	Skipped  Status = "skipped"
)

// Figure is one measured quantity for one tool in one case of a scenario.
type Figure struct {
	Scenario string    `json:"scenario"`
	Case     string    `json:"case"`
	Tool     string    `json:"tool"`
	Unit     string    `json:"unit"`
	Status   Status    `json:"status"`
	Reason   string    `json:"reason,omitempty"`
	Samples  []float64 `json:"samples,omitempty"`
	Min      float64   `json:"min"`
	Median   float64   `json:"median"`
	P90      float64   `json:"p90"`
	P99      float64   `json:"p99"`
	Max      float64   `json:"max"`
}

// newFigure computes the statistics of samples.
func newFigure(scenario, cas, tool, unit string, samples []float64) Figure {
	f := Figure{Scenario: scenario, Case: cas, Tool: tool, Unit: unit, Status: Measured, Samples: samples}
	s := slices.Clone(samples)
	slices.Sort(s)
	if len(s) > 0 {
		f.Min, f.Max = s[0], s[len(s)-1]
		f.Median = quantile(s, 0.5)
		f.P90 = quantile(s, 0.9)
		f.P99 = quantile(s, 0.99)
	}
	return f
}

// quantile of sorted samples, nearest rank.
func quantile(sorted []float64, q float64) float64 {
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// Report is the result of a run.
type Report struct {
	Date    time.Time `json:"date"`
	Machine string    `json:"machine"`
	Quick   bool      `json:"quick"`
	Data    string    `json:"data"`
	Figures []Figure  `json:"figures"`
	// Notes are what a scenario concludes (goals met or missed), printed
	// under its table.
	Notes    []Note  `json:"notes,omitempty"`
	Duration float64 `json:"durationSeconds"`
	charts   []chart
}

// Note is one conclusion of a scenario.
type Note struct {
	Scenario string `json:"scenario"`
	Text     string `json:"text"`
}

func (r *Report) add(f Figure) { r.Figures = append(r.Figures, f) }

func (r *Report) note(scenario, text string) {
	r.Notes = append(r.Notes, Note{Scenario: scenario, Text: text})
}

// figure returns the measured figure of tool in a scenario's case.
func (r *Report) figure(scenario, cas, tool string) (Figure, bool) {
	for _, f := range r.Figures {
		if f.Scenario == scenario && f.Case == cas && f.Tool == tool && f.Status == Measured {
			return f, true
		}
	}
	return Figure{}, false
}

func (r *Report) skip(scenario, cas, tool, unit, reason string) {
	r.add(Figure{Scenario: scenario, Case: cas, Tool: tool, Unit: unit, Status: Skipped, Reason: reason})
}

// write saves report.json, report.md and the charts into dir.
func (r *Report) write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "report.json"), b, 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	for _, c := range r.charts {
		if err := os.WriteFile(filepath.Join(dir, c.file), []byte(c.svg()), 0o644); err != nil {
			return fmt.Errorf("write chart: %w", err)
		}
	}
	return os.WriteFile(filepath.Join(dir, "report.md"), []byte(r.markdown()), 0o644)
}

// markdown renders one table per scenario: a row per case and tool, with
// the median, the spread, and the ratio to the case's acetate figure.
func (r *Report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# acetate benchmark report\n\n- date: %s\n- machine: %s\n- data: %s\n- quick: %v\n- duration: %.0f s\n",
		r.Date.Format(time.RFC3339), r.Machine, r.Data, r.Quick, r.Duration)
	var scenarios []string
	for _, f := range r.Figures {
		if !slices.Contains(scenarios, f.Scenario) {
			scenarios = append(scenarios, f.Scenario)
		}
	}
	for _, s := range scenarios {
		fmt.Fprintf(&b, "\n## %s\n\n| case | tool | median | min | p90 | p99 | max | samples | vs acetate |\n|---|---|---:|---:|---:|---:|---:|---:|---:|\n", s)
		for _, f := range r.Figures {
			if f.Scenario != s {
				continue
			}
			if f.Status == Skipped {
				fmt.Fprintf(&b, "| %s | %s | skipped: %s | | | | | | |\n", f.Case, mdEscape(f.Tool), mdEscape(f.Reason))
				continue
			}
			ratio := ""
			if ref, ok := r.acetateFigure(f); ok && ref.Median > 0 && f.Tool != ref.Tool {
				ratio = fmt.Sprintf("%.2f×", f.Median/ref.Median)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %d | %s |\n", f.Case, mdEscape(f.Tool),
				formatValue(f.Median, f.Unit), formatValue(f.Min, f.Unit), formatValue(f.P90, f.Unit), formatValue(f.P99, f.Unit), formatValue(f.Max, f.Unit), len(f.Samples), ratio)
		}
		for _, n := range r.Notes {
			if n.Scenario == s {
				fmt.Fprintf(&b, "\n- %s\n", n.Text)
			}
		}
	}
	for _, c := range r.charts {
		fmt.Fprintf(&b, "\n![%s](%s)\n", c.title, c.file)
	}
	return b.String()
}

// acetateFigure is the figure of the case's first acetate tool.
func (r *Report) acetateFigure(f Figure) (Figure, bool) {
	for _, g := range r.Figures {
		if g.Scenario == f.Scenario && g.Case == f.Case && strings.HasPrefix(g.Tool, "acetate") && g.Status == Measured {
			return g, true
		}
	}
	return Figure{}, false
}

// formatValue prints a value with its unit in a readable scale.
func formatValue(v float64, unit string) string {
	switch unit {
	case "s":
		switch {
		case v < 1e-3:
			return fmt.Sprintf("%.1f µs", v*1e6)
		case v < 1:
			return fmt.Sprintf("%.2f ms", v*1e3)
		}
		return fmt.Sprintf("%.2f s", v)
	case "B":
		switch {
		case v >= 1<<30:
			return fmt.Sprintf("%.2f GiB", v/(1<<30))
		case v >= 1<<20:
			return fmt.Sprintf("%.1f MiB", v/(1<<20))
		case v >= 1<<10:
			return fmt.Sprintf("%.1f KiB", v/(1<<10))
		}
		return fmt.Sprintf("%.0f B", v)
	}
	return fmt.Sprintf("%.3g %s", v, unit)
}

func mdEscape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
