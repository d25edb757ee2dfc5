package templates

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
)

// DefaultTag is the tag of a reference that names none.
const DefaultTag = "latest"

// The patterns are compiled on first use, not at package init: every
// container start runs the acetate binary's init functions.
var (
	nameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9]+(?:[._-][a-z0-9]+)*$`) })
	tagRE  = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`) })
)

// Ref names a template: NAME:TAG.
type Ref struct {
	Name string `json:"name"`
	Tag  string `json:"tag"`
}

// String formats the reference as NAME:TAG.
func (r Ref) String() string { return r.Name + ":" + r.Tag }

// ParseRef parses NAME[:TAG]. Names are lowercase letters and digits
// separated by '.', '_' or '-' (at most 128 bytes); tags are as Docker's.
func ParseRef(s string) (Ref, error) {
	name, tag, hasTag := strings.Cut(s, ":")
	if !hasTag {
		tag = DefaultTag
	}
	if len(name) > 128 || !nameRE().MatchString(name) {
		return Ref{}, fmt.Errorf("invalid template name %q: use lowercase letters, digits and single '.', '_' or '-' between them (no '/', spaces or uppercase)", name)
	}
	if !tagRE().MatchString(tag) {
		return Ref{}, fmt.Errorf("invalid tag %q in %q: use letters, digits, '_', '.', '-' (at most 128, not starting with '.' or '-')", tag, s)
	}
	return Ref{Name: name, Tag: tag}, nil
}

// MustParseRef is ParseRef for constants; it panics on error.
func MustParseRef(s string) Ref {
	r, err := ParseRef(s)
	if err != nil {
		panic(err)
	}
	return r
}
