package main

import (
	"slices"
	"strings"

	"github.com/acetate/acetate/fs/container"
	"github.com/acetate/acetate/runtime"
	"github.com/acetate/acetate/templates"
	"github.com/spf13/cobra"
)

// lister lists the names a shell may complete an argument with.
type lister func(a *app) []string

// argCompletions says, for each command (by path below acetate), what its
// positional arguments are: the lister at index i completes argument i.
// A command marked variadic completes every later argument with its last
// lister. Arguments past the list (a container's command) complete to
// nothing, and a name already given is not offered again.
var argCompletions = map[string]struct {
	listers  []lister
	variadic bool
}{
	"clone":            {[]lister{containerNames}, false},
	"mount":            {[]lister{containerNames}, false},
	"unmount":          {[]lister{containerNames}, false},
	"diff":             {[]lister{containerNames}, false},
	"commit":           {[]lister{containerNames}, false},
	"reset":            {[]lister{containerNames}, false},
	"rebase":           {[]lister{containerNames, templateNames}, false},
	"rm":               {[]lister{containerNames}, true},
	"run":              {[]lister{containerNames}, false},
	"start":            {[]lister{containerNames}, false},
	"exec":             {[]lister{containerNames}, false},
	"stop":             {[]lister{containerNames}, true},
	"logs":             {[]lister{containerNames}, false},
	"pause":            {[]lister{containerNames}, true},
	"unpause":          {[]lister{containerNames}, true},
	"snapshot create":  {[]lister{containerNames}, false},
	"snapshot ls":      {[]lister{containerNames}, false},
	"snapshot restore": {[]lister{containerNames}, false},
	"snapshot rm":      {[]lister{containerNames}, false},
	"export":           {[]lister{containerNames}, false},
	"move":             {[]lister{containerNames}, false},
	"push":             {[]lister{templateNames}, false},
	"template inspect": {[]lister{templateNames}, false},
	"template tag":     {[]lister{templateNames}, false},
	"template rm":      {[]lister{templateNames}, true},
	"template export":  {[]lister{templateNames}, false},
	"template rebase":  {[]lister{templateNames}, false},
	"volume rm":        {[]lister{volumeNames}, true},
	"volume inspect":   {[]lister{volumeNames}, false},
}

// flagCompletions completes the values of flags, by flag name, in every
// command that has the flag.
var flagCompletions = map[string]lister{
	"from":   templateNames,
	"on":     templateNames,
	"onto":   templateNames,
	"driver": func(*app) []string { return container.DriverNames() },
	"net":    func(*app) []string { return []string{runtime.NetworkNone, runtime.NetworkHost} },
	"format": func(*app) []string { return []string{"table", "json"} },
}

// addCompletions sets the argument and flag completions of cmd and of
// every command below it.
func (a *app) addCompletions(cmd *cobra.Command) {
	for _, c := range cmd.Commands() {
		a.addCompletions(c)
	}
	path := strings.TrimPrefix(strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()), " ")
	if ac, ok := argCompletions[path]; ok {
		cmd.ValidArgsFunction = func(c *cobra.Command, args []string, prefix string) ([]string, cobra.ShellCompDirective) {
			i := len(args)
			if ac.variadic && i >= len(ac.listers) {
				i = len(ac.listers) - 1
			}
			if i >= len(ac.listers) {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			names := slices.DeleteFunc(ac.listers[i](a), func(n string) bool { return slices.Contains(args, n) })
			return names, cobra.ShellCompDirectiveNoFileComp
		}
	}
	for name, l := range flagCompletions {
		if cmd.LocalFlags().Lookup(name) == nil {
			continue
		}
		cmd.RegisterFlagCompletionFunc(name, func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return l(a), cobra.ShellCompDirectiveNoFileComp
		})
	}
}

// templateNames lists the store's templates as NAME:TAG; none when there
// is no store (a.store never creates one).
func templateNames(a *app) []string {
	st, err := a.store()
	if err != nil {
		return nil
	}
	return namesOf(st.List, func(t *templates.Template) string { return t.Ref.String() })
}

// containerNames lists the store's containers; none when there is no
// store.
func containerNames(a *app) []string {
	m, err := a.containers()
	if err != nil {
		return nil
	}
	return namesOf(m.List, func(c *container.Container) string { return c.Name })
}

// namesOf returns the name of everything list returns; none on error.
func namesOf[T any](list func() ([]T, error), name func(T) string) []string {
	all, err := list()
	if err != nil {
		return nil
	}
	names := make([]string, 0, len(all))
	for _, x := range all {
		names = append(names, name(x))
	}
	return names
}
