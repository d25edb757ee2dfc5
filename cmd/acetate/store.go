package main

import (
	"fmt"

	"github.com/acetate/acetate/fs/container"
	"github.com/acetate/acetate/fs/volume"
	"github.com/acetate/acetate/templates"
	"github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"
)

func newDFCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "df",
		Short: "Show the store's use of disk and the savings from sharing",
		Long: `df shows, for templates and for containers, the logical size (what full
copies would hold) against the disk really used (allocated blocks), and the
savings ratio of the whole store. The row "staging (tmp/)" is what the
store's tmp/ holds: files that a running publish, commit or pull stages, or
that an interrupted one left behind (gc removes those); the total counts
it. The row "volumes" is what the named volumes hold (acetate volume ls),
also counted in the total.`,
		Example: `  acetate df
  acetate df --format json | jq .savings`,
		Args: exactArgs(0),
		RunE: func(c *cobra.Command, args []string) error {
			m, err := a.containers()
			if err != nil {
				return err
			}
			u, err := m.Store().DiskUsage()
			if err != nil {
				return err
			}
			cu, err := m.DiskUsage()
			if err != nil {
				return err
			}
			vu, err := volume.Open(m.Store().Layers.Root()).Usage()
			if err != nil {
				return err
			}
			total := storeUsage{Templates: u, Containers: cu, Volumes: vu}
			disk := u.DiskBytes + cu.DiskBytes + u.TempBytes + vu.DiskBytes
			if disk > 0 {
				total.Savings = float64(u.LogicalBytes+cu.LogicalBytes+vu.DiskBytes) / float64(disk)
			}
			return a.render(total, table{
				header: []string{"KIND", "COUNT", "LOGICAL", "ON DISK", "SAVINGS"},
				rows: [][]string{
					{"templates", fmt.Sprint(u.Templates), humanBytes(u.LogicalBytes), humanBytes(u.DiskBytes), fmt.Sprintf("%.2fx", u.Savings)},
					{"containers", fmt.Sprint(cu.Containers), humanBytes(cu.LogicalBytes), humanBytes(cu.DiskBytes), ratio(cu.LogicalBytes, cu.DiskBytes)},
					{"volumes", fmt.Sprint(vu.Volumes), humanBytes(vu.DiskBytes), humanBytes(vu.DiskBytes), "-"},
					{"staging (tmp/)", fmt.Sprint(u.TempFiles), "-", humanBytes(u.TempBytes), "-"},
					{"total", "", humanBytes(u.LogicalBytes + cu.LogicalBytes + vu.DiskBytes), humanBytes(disk), fmt.Sprintf("%.2fx", total.Savings)},
				},
			})
		},
	}
}

// storeUsage is df's report.
type storeUsage struct {
	Templates  *templates.Usage `json:"templates"`
	Containers *container.Usage `json:"containers"`
	Volumes    *volume.Usage    `json:"volumes"`
	// Savings is all logical bytes over all bytes on disk.
	Savings float64 `json:"savings"`
}

func ratio(logical, disk int64) string {
	if disk == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0fx", float64(logical)/float64(disk))
}

func newGCCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "gc",
		Short:   "Remove layers and objects no template or container uses",
		Example: `  acetate template rm debian:old && acetate gc`,
		Args:    exactArgs(0),
		RunE: func(c *cobra.Command, args []string) error {
			st, err := a.store()
			if err != nil {
				return err
			}
			r, err := st.GC(c.Context(), a.gcRoots()...)
			if err != nil {
				return err
			}
			return a.render(r, table{
				header: []string{"LAYERS", "OBJECTS", "TEMP FILES", "FREED"},
				rows:   [][]string{{fmt.Sprint(r.Layers), fmt.Sprint(r.Objects), fmt.Sprint(r.TempFiles), humanBytes(r.BytesFreed)}},
			})
		},
	}
}

func newFsckCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "fsck",
		Short: "Re-hash every object and check every reference",
		Long: `fsck re-hashes every object and every layer manifest, and checks that every
template's layers and every layer's objects exist. Each problem is named by
kind, template, path, layer and object. The exit code is 4 when any
problem is found.`,
		Example: `  acetate fsck
  acetate fsck --format json | jq '.problems[]'`,
		Args: exactArgs(0),
		RunE: func(c *cobra.Command, args []string) error {
			st, err := a.store()
			if err != nil {
				return err
			}
			p, done := a.progress("checking objects", false)
			r, err := st.Fsck(c.Context(), p)
			done()
			if err != nil {
				return err
			}
			t := table{header: []string{"KIND", "TEMPLATE", "PATH", "LAYER", "OBJECT", "DETAIL"}}
			for _, pr := range r.Problems {
				t.rows = append(t.rows, []string{pr.Kind, pr.Template, pr.Path, short(pr.Layer), short(pr.Object), pr.Detail})
			}
			if r.OK() && a.format == "table" {
				fmt.Fprintf(a.stdout, "ok: %d templates, %d layers, %d objects checked\n", r.Templates, r.Layers, r.Objects)
				return nil
			}
			if err := a.render(r, t); err != nil {
				return err
			}
			if !r.OK() {
				return problemsError{fmt.Errorf("fsck: %d problem(s) found", len(r.Problems))}
			}
			return nil
		},
	}
}

// short abbreviates a digest for tables.
func short(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
}

// gcRoots lists what GC must keep besides templates: the layers of every
// container.
func (a *app) gcRoots() []templates.Roots {
	m, err := a.containers()
	if err != nil {
		return []templates.Roots{func() ([]digest.Digest, error) { return nil, err }}
	}
	return []templates.Roots{m.Roots}
}
