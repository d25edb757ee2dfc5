// Command acetate manages OS templates stored once in a content-addressed
// store, and containers that record only their own differences over them.
//
// The command is a thin layer: it parses flags, calls the templates, fs and
// runtime packages, and renders their results as tables or JSON.
package main

import (
	"os"

	"github.com/acetate/acetate/fs/fuse"
	"github.com/acetate/acetate/runtime"
)

func main() {
	// When the fuse driver re-executed acetate as a store's FUSE server,
	// this serves the store's fuse mounts until none is left and never
	// returns.
	fuse.ServeIfRequested()
	// When acetate re-executed itself as a container's init, an exec
	// helper or the store's container supervisor, this does that job and
	// never returns.
	runtime.InitMain()
	os.Exit(execute(os.Args[1:]))
}
