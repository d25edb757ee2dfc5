// Package templates keeps named, tagged templates over the layer store.
//
// A template is NAME:TAG pointing at an ordered stack of layers (bottom
// first) plus a small run configuration. A base OS template is usually one
// layer; an application template published --on a base adds one layer that
// holds only what differs from it, as OS and application templates did in
// Virtuozzo.
//
// Refs live in templates/<name>/<tag>.json under the store root and are
// replaced atomically (write, fsync, rename). Publishing holds the store's
// shared lock until the ref is written; GC holds the exclusive lock, so it
// never removes what a running publish is about to reference.
//
// # Publishing a template
//
//	st, _ := templates.Open("/var/lib/acetate")
//	t, err := st.Publish(ctx, templates.MustParseRef("debian:12"), "/srv/rootfs", templates.PublishOptions{})
//
// # Checking the store
//
// Fsck re-hashes every object and checks every reference, and names each
// problem by object, layer, template and path; GC removes what no template
// and no extra root (containers) reaches.
package templates
