package upper

import (
	"slices"

	"github.com/acetate/acetate/layers"
)

// LauncherDirs are the mount points the launcher creates in a container's
// root when its template lacks them (the targets with mkdir set in
// runtime/mounts_linux.go whose parent is the union itself: /dev/pts and
// the others below /dev land on the tmpfs mounted at /dev). The launcher
// makes each with os.MkdirAll(target, 0755) and mounts over it, so the
// upper directory keeps an empty directory, owned like the root, with no
// extended attribute but overlayfs's own. runtime's
// TestMountDirsAreLauncherDirs checks this list against the launcher's.
var LauncherDirs = []string{"/dev", "/proc", "/sys"}

// MountPointXattr marks a directory the launcher made in a container's
// root for a mount point of a volume, bind mount or tmpfs that the root
// lacked, or the empty file it made for a file's bind (runtime's
// mountVolumes; the parent keeps its mtime). Such a directory, still as
// made (mode 0755, owned like the root, with no other extended attribute)
// and holding nothing but such entries, or such a file (mode 0644, empty),
// is left out like LauncherDirs; and the mark itself is never part of an
// entry. A
// container cannot forge the mark: trusted.* attributes take
// CAP_SYS_ADMIN on the host.
const MountPointXattr = "trusted.acetate.mountpoint"

// dropLauncherDirs removes from the sorted layer the directories the
// launcher made (see launcherMade): they are not the container's changes,
// so neither diff nor commit shows them. Dropping one loses nothing: the
// next start makes the same directory again. When they are the only names
// the upper directory adds to its root, the root's mtime (which their
// mkdir moved) is the template's again, so the root does not show as
// changed either.
func (r *reader) dropLauncherDirs() {
	es := r.m.Entries
	drop := map[string]bool{}
	kept := map[string]bool{} // directories with an entry kept below
	for i := len(es) - 1; i > 0; i-- {
		e := &es[i]
		if r.launcherMade(i) || !kept[e.Path] && r.mountPoint(e) {
			drop[e.Path] = true
			continue
		}
		kept[layers.Parent(e.Path)] = true
		e.Xattrs = slices.DeleteFunc(e.Xattrs, func(x layers.Xattr) bool { return x.Name == MountPointXattr })
	}
	if len(drop) == 0 {
		return
	}
	r.m.Entries = slices.DeleteFunc(es, func(e layers.Entry) bool { return drop[e.Path] })
	r.restoreRootMtime()
}

// launcherMade reports whether entry i of the sorted layer is a directory
// the launcher made: one of LauncherDirs, absent from the template, and
// still as the launcher left it: empty, mode 0755, owned like the root, and
// with no extended attribute of its own (a container that changed any of
// these keeps it as its change).
func (r *reader) launcherMade(i int) bool {
	es := r.m.Entries
	e, root := &es[i], &es[0]
	if _, inBase := r.index[e.Path]; inBase || !slices.Contains(LauncherDirs, e.Path) {
		return false
	}
	empty := i+1 == len(es) || !layers.IsUnder(es[i+1].Path, e.Path)
	return empty && e.Type == layers.TypeDir && e.Mode == 0o755 &&
		e.UID == root.UID && e.GID == root.GID && len(e.Xattrs) == 0
}

// mountPoint reports whether e is a mount point the launcher made, as
// MountPointXattr says.
func (r *reader) mountPoint(e *layers.Entry) bool {
	root := &r.m.Entries[0]
	_, inBase := r.index[e.Path]
	asMade := e.Type == layers.TypeDir && e.Mode == 0o755 || e.Type == layers.TypeReg && e.Mode == 0o644 && e.Size == 0
	return !inBase && asMade && e.UID == root.UID && e.GID == root.GID &&
		len(e.Xattrs) == 1 && e.Xattrs[0].Name == MountPointXattr
}

// restoreRootMtime gives the layer's root the template root's mtime when
// that is all that differs between them and no name in the root is new or
// whited out: a directory's mtime records the names made and removed in
// it, and the only such names were the launcher's.
func (r *reader) restoreRootMtime() {
	i, ok := r.index["/"]
	if !ok {
		return
	}
	for _, e := range r.m.Entries[1:] {
		_, inBase := r.index[e.Path]
		if layers.Parent(e.Path) == "/" && (!inBase || e.Type == layers.TypeWhiteout) {
			return
		}
	}
	root, was := r.m.Entries[0], r.base[i]
	root.Mtime = was.Mtime
	if layers.SameContent(&root, &was) {
		r.m.Entries[0].Mtime = was.Mtime
	}
}
