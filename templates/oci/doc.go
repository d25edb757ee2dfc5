// Package oci converts between templates and OCI images.
//
// An OCI image (from an image layout directory, a `docker save` archive or a
// registry) becomes a template with one acetate layer per image layer:
// whiteouts (".wh.NAME") and opaque markers (".wh..wh..opq") become the
// store's whiteouts and opaque directories, and the image config's
// Entrypoint+Cmd, Env, WorkingDir and User become the template's Config.
// Every blob is verified against its digest before anything it holds is
// committed to the store, and the template ref is written last, so a failed
// import leaves no template and no committed object behind.
//
// Layers are read as container runtimes read them: absolute entry names are
// taken as relative to the root, an empty layer adds no layer, and a
// directory a layer holds entries of without naming it (umoci writes such
// layers) keeps the metadata it has in the layers below instead of the
// made-up one the store gives it (see layers.Tree.Implied).
//
// The other way, Image presents a template as a v1.Image of the
// go-containerregistry library (one gzip layer per acetate layer), and
// ExportLayout writes it into an OCI image layout that skopeo and umoci
// read. Layer tarballs are deterministic: the same template always gives
// the same layer, config and manifest digests.
//
// # Importing an image layout
//
//	img, err := oci.OpenSource("oci:/srv/images/debian:12")
//	t, err := oci.Import(ctx, st, templates.MustParseRef("debian:12"), img, nil)
//
// # Exporting a template
//
//	err := oci.ExportLayout(ctx, st, t, "/srv/images/debian", "12", nil)
package oci
