package layers

// Merge returns the merged view of a stack of layers, bottom layer first, as
// overlayfs shows it: upper entries replace lower ones, whiteouts delete,
// opaque directories and non-directories hide everything below them in lower
// layers. The result has no whiteouts and no opaque flags, and is sorted.
func Merge(stack []*Manifest) []Entry {
	var merged []Entry
	for _, m := range stack {
		merged = mergeTwo(merged, m.Entries)
	}
	fixHardlinks(merged)
	return merged
}

func mergeTwo(lower, upper []Entry) []Entry {
	out := make([]Entry, 0, len(lower)+len(upper))
	i := 0
	hide := "" // lower entries below this path are hidden
	emitLowerBefore := func(limit string) {
		for i < len(lower) && (limit == "" || ComparePaths(lower[i].Path, limit) < 0) {
			if hide == "" || lower[i].Path == hide || !IsUnder(lower[i].Path, hide) {
				out = append(out, lower[i])
			}
			i++
		}
	}
	for _, u := range upper {
		emitLowerBefore(u.Path)
		if i < len(lower) && lower[i].Path == u.Path {
			i++
		}
		if hide != "" && !IsUnder(u.Path, hide) {
			hide = ""
		}
		hides := u.Type != TypeDir || u.Opaque
		if hides && hide == "" {
			hide = u.Path
		}
		if u.Type == TypeWhiteout {
			continue
		}
		u.Opaque = false
		out = append(out, u)
	}
	emitLowerBefore("")
	return out
}

// fixHardlinks unlinks members of a hardlink group whose leader was replaced
// by an upper layer: they become files of their own.
func fixHardlinks(entries []Entry) {
	byPath := map[string]*Entry{}
	for i := range entries {
		e := &entries[i]
		if e.Type == TypeReg && e.LinkTo == "" {
			byPath[e.Path] = e
		}
	}
	for i := range entries {
		e := &entries[i]
		if e.LinkTo == "" {
			continue
		}
		if l, ok := byPath[e.LinkTo]; !ok || !SameContent(l, e) {
			e.LinkTo = ""
		}
	}
}

// Diff returns the layer that, stacked on base (a merged view), gives tree
// (a full tree): new and changed entries with their parent directories, and
// whiteouts for what tree removed. Hardlink groups are kept whole.
func Diff(base []Entry, tree []Entry) *Manifest {
	include := make([]bool, len(tree))
	var whiteouts []Entry
	i, j := 0, 0
	hide := ""
	for i < len(base) || j < len(tree) {
		c := compareAt(base, tree, i, j)
		switch {
		case c < 0: // only in base: deleted
			if hide == "" || !IsUnder(base[i].Path, hide) {
				whiteouts = append(whiteouts, Entry{Path: base[i].Path, Type: TypeWhiteout})
				hide = base[i].Path
			}
			i++
		case c > 0: // only in tree: added
			include[j] = true
			j++
		default:
			if hide != "" && !IsUnder(tree[j].Path, hide) {
				hide = ""
			}
			if !SameContent(&base[i], &tree[j]) {
				include[j] = true
				if tree[j].Type != TypeDir && base[i].Type == TypeDir {
					hide = tree[j].Path
				}
			}
			i++
			j++
		}
	}
	includeGroupsAndParents(tree, include, whiteouts)
	m := &Manifest{Entries: whiteouts}
	for k := range tree {
		if include[k] {
			m.Entries = append(m.Entries, tree[k])
		}
	}
	m.Sort()
	return m
}

func compareAt(base, tree []Entry, i, j int) int {
	switch {
	case i >= len(base):
		return 1
	case j >= len(tree):
		return -1
	}
	return ComparePaths(base[i].Path, tree[j].Path)
}

// includeGroupsAndParents extends include to whole hardlink groups and to
// the parent directories of every included entry and whiteout.
func includeGroupsAndParents(tree []Entry, include []bool, whiteouts []Entry) {
	index := make(map[string]int, len(tree))
	for k := range tree {
		index[tree[k].Path] = k
	}
	for _, w := range whiteouts {
		include[index[Parent(w.Path)]] = true
	}
	leaders := map[string]bool{}
	for k := range tree {
		if include[k] && tree[k].LinkTo != "" {
			leaders[tree[k].LinkTo] = true
		}
	}
	for k := range tree {
		if leaders[tree[k].Path] || leaders[tree[k].LinkTo] {
			include[k] = true
		}
	}
	for k := range tree {
		if !include[k] {
			continue
		}
		for p := Parent(tree[k].Path); p != tree[k].Path; p = Parent(p) {
			pk := index[p]
			if include[pk] && pk < k {
				break
			}
			include[pk] = true
			if p == "/" {
				break
			}
		}
	}
}
