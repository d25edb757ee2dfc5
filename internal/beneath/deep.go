package beneath

import (
	"path"
	"strings"
)

// ResolveDeep is Resolve for a path of any length. The attack it stops: a
// container nests directories deeper than PATH_MAX (300 levels of 200-byte
// names), so that a tool resolving the whole path at once fails with
// ENAMETOOLONG on the container's files and cannot commit, diff or rebase
// it. The parent is opened one component at a time, each beneath the one
// before and without following a symbolic link. The caller closes the
// result.
func ResolveDeep(dirfd int, rel string) (At, error) {
	rel = strings.Trim(rel, "/")
	if rel == "" || rel == "." {
		return At{Dir: dirfd, Name: "."}, nil
	}
	parent, name := path.Split(rel)
	at := At{Dir: dirfd, Name: name}
	for _, comp := range strings.Split(strings.TrimSuffix(parent, "/"), "/") {
		if comp == "" {
			continue
		}
		fd, err := OpenDir(at.Dir, comp)
		at.Close()
		if err != nil {
			return At{}, err
		}
		at = At{Dir: fd, Name: name, owned: true}
	}
	return at, nil
}
