// Package fstest is the conformance table of the union drivers: filesystem
// cases in go-fuse posixtest's shape, map[string]Case, and a runner that
// runs every case on several targets (a plain directory, kernel overlayfs,
// the fuse driver, the overlay driver) over the same fixture tree and
// compares what they leave.
//
// A case gets the root of a freshly mounted union over the fixture and
// checks POSIX behaviour itself. The runner then compares the tree each
// target leaves with the first target's (the reference, usually a plain
// directory), and, for every target that keeps an upper directory,
// mounts that upper directory under each other overlay-format target and
// checks that it shows the same tree: a container changed under one
// driver reads the same under the other.
//
// A driver package adds itself as a target in its tests:
//
//	func TestConformance(t *testing.T) {
//		fstest.Run(t, fstest.PlainDir(), fstest.KernelOverlay(), fstest.DriverTarget(&fuse.Driver{}))
//	}
package fstest
