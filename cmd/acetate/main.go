// Command acetate manages OS templates stored once in a content-addressed
// store, and containers that record only their own differences over them.
//
// The command is a thin layer: it parses flags, calls the templates, fs and
// runtime packages, and renders their results as tables or JSON.
package main

import (
	"os"
)

func main() {
	os.Exit(execute(os.Args[1:]))
}
