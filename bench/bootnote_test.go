package bench

import (
	"strings"
	"testing"
)

// The memory goal line says at which counts an idle booted container of
// acetate costs no more than under LXC, each count on its own (issue 18's
// density scenario boots 100; at 10 the fuse driver's server costs more).
func TestMemoryGoalNoteByCount(t *testing.T) {
	e := &env{opts: Options{BootCounts: []int{1, 10, 100}}, report: &Report{}}
	pss := map[string][3]float64{ // MiB at 1, 10 and 100 at once
		"acetate fuse": {34.6, 11.7, 9.22},
		"lxc-start":    {22.5, 10.5, 9.25},
	}
	for tool, at := range pss {
		for i, n := range e.bootCounts() {
			e.report.add(Figure{Scenario: "boot", Case: bootMemoryCase(n), Tool: tool, Unit: "B",
				Status: Measured, Median: at[i] * (1 << 20)})
		}
	}
	e.memoryGoalNote()
	if len(e.report.Notes) != 1 || !strings.Contains(e.report.Notes[0].Text, "≤ lxc-start's: missed at 10, met at 100 —") {
		t.Fatalf("notes %+v, want one saying: missed at 10, met at 100", e.report.Notes)
	}
}
