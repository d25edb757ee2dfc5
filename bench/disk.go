package bench

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/acetate/acetate/internal/du"

	"github.com/acetate/acetate/layers"
	"github.com/acetate/acetate/templates"
)

// benchDisk measures the bytes really used (allocated blocks) to keep two
// templates that share a base: the acetate store, an ostree repo, and two
// OCI-style layer tarballs (the base, and a layer with what the second adds).
func benchDisk(e *env) error {
	base, app := e.data.noDev, e.data.app
	if err := sh(fmt.Sprintf("rm -rf %q/dev/*", app)); err != nil {
		return err
	}
	const cas = "two templates sharing a base"
	st, err := templates.Open(e.dir("store"))
	if err != nil {
		return err
	}
	bt, err := st.Publish(e.ctx, templates.MustParseRef("base"), base, templates.PublishOptions{})
	if err != nil {
		return err
	}
	at, err := st.Publish(e.ctx, templates.MustParseRef("app"), app, templates.PublishOptions{Base: &bt.Ref})
	if err != nil {
		return err
	}
	e.report.add(newFigure("disk", cas, "acetate store", "B", []float64{float64(du.Tree(st.Layers.ObjectsDir()).Disk + du.Tree(st.Layers.LayersDir()).Disk)}))
	e.report.add(newFigure("disk", cas, "full copies (cp -a)", "B", []float64{float64(du.Tree(base).Disk + du.Tree(app).Disk)}))

	if reason := needs("ostree"); reason != "" {
		e.report.skip("disk", cas, "ostree repo (bare)", "B", reason)
	} else {
		repo := e.dir("ostree")
		err := sh(fmt.Sprintf("ostree init --repo=%[1]q --mode=bare && ostree commit --repo=%[1]q -b base --tree=dir=%[2]q >/dev/null && ostree commit --repo=%[1]q -b app --tree=dir=%[3]q >/dev/null", repo, base, app))
		if err != nil {
			return err
		}
		e.report.add(newFigure("disk", cas, "ostree repo (bare)", "B", []float64{float64(du.Tree(filepath.Join(repo, "objects")).Disk)}))
	}
	layerTars, err := ociLayerBytes(e, st, bt, at)
	if err != nil {
		return err
	}
	e.report.add(newFigure("disk", cas, "OCI layer tarballs (gzip)", "B", []float64{float64(layerTars)}))
	return nil
}

// ociLayerBytes writes the base as one gzip layer tarball and the app's own
// layer (its new and changed files) as another, and returns their size.
func ociLayerBytes(e *env, st *templates.Store, bt, at *templates.Template) (int64, error) {
	dir := e.dir("oci")
	basePath := filepath.Join(dir, "base.tar.gz")
	f, err := os.Create(basePath)
	if err != nil {
		return 0, err
	}
	err = st.WriteTar(e.ctx, bt, basePath, f, nil)
	f.Close()
	if err != nil {
		return 0, err
	}
	top, err := st.Layers.ReadLayer(at.Layers[len(at.Layers)-1])
	if err != nil {
		return 0, err
	}
	var added []layers.Entry
	for _, en := range top.Entries {
		if en.Type != layers.TypeWhiteout {
			added = append(added, en)
		}
	}
	appPath := filepath.Join(dir, "app.tar")
	g, err := os.Create(appPath)
	if err != nil {
		return 0, err
	}
	err = st.Layers.ExportTar(e.ctx, added, g, nil)
	g.Close()
	if err != nil {
		return 0, err
	}
	if err := sh(fmt.Sprintf("gzip -q %q", appPath)); err != nil {
		return 0, err
	}
	return du.Tree(dir).Disk, nil
}
