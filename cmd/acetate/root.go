package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/acetate/acetate/fs/container"
	"github.com/acetate/acetate/fs/volume"
	"github.com/acetate/acetate/templates"
	"github.com/spf13/cobra"
)

// Exit codes, as scripts see them.
const (
	exitOK       = 0
	exitFailure  = 1 // the operation failed
	exitUsage    = 2 // bad command line, name or argument
	exitNotFound = 3 // a named template or container does not exist
	exitProblems = 4 // fsck found problems
)

// usageError marks errors in what the user typed.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// commandExit carries the exit code of a container's command, which
// acetate exits with, silently.
type commandExit struct{ code int }

func (e commandExit) Error() string { return fmt.Sprintf("command exited with %d", e.code) }

// problemsError marks a check that ran and found problems.
type problemsError struct{ error }

// app holds what every command shares.
type app struct {
	root   string
	format string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// store opens the existing store at --root; see requireStore.
func (a *app) store() (*templates.Store, error) {
	if err := requireStore(a.root); err != nil {
		return nil, err
	}
	return templates.Open(a.root)
}

// createStore opens the store at --root, making it when missing: only the
// commands that put templates into a store (publish, import, pull) do.
func (a *app) createStore() (*templates.Store, error) { return templates.Open(a.root) }

// errNoStore is wrapped by the error about a --root that is no store.
var errNoStore = errors.New("no store")

// requireStore returns an error wrapping errNoStore unless root is a store,
// or an empty directory made for one. So a mistyped --root on a command
// that reads (template ls, ps, df, ...) says so, and creates nothing.
func requireStore(root string) error {
	const hint = "check --root (or ACETATE_ROOT); template publish, template import and pull make a store"
	ents, err := os.ReadDir(root)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w at %s: %s", errNoStore, root, hint)
	case err != nil:
		return fmt.Errorf("store %s: %w", root, err)
	case len(ents) == 0:
		return nil
	}
	if fi, err := os.Stat(filepath.Join(root, "templates")); err != nil || !fi.IsDir() {
		return fmt.Errorf("%w at %s (a directory that holds other files): %s", errNoStore, root, hint)
	}
	return nil
}

func execute(args []string) int {
	a := &app{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}
	cmd := newRootCmd(a)
	cmd.SetArgs(args)
	err := cmd.Execute()
	if err == nil {
		return exitOK
	}
	var ce commandExit
	if errors.As(err, &ce) {
		return ce.code
	}
	fmt.Fprintln(a.stderr, "acetate:", err)
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return exitCode(err)
}

func exitCode(err error) int {
	var ue usageError
	var pe problemsError
	switch {
	case errors.Is(err, templates.ErrNotFound), errors.Is(err, container.ErrNotFound), errors.Is(err, container.ErrSnapshotNotFound), errors.Is(err, errNoStore),
		errors.Is(err, volume.ErrNotFound):
		return exitNotFound
	case errors.As(err, &pe):
		return exitProblems
	case errors.As(err, &ue):
		return exitUsage
	}
	return exitFailure
}

func newRootCmd(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "acetate",
		Short: "OS templates stored once, containers that keep only their differences",
		Long: `acetate stores base OS templates once in a content-addressed store and
serves containers through a union mount that records only each container's
own differences.`,
		Example: `  # publish a Debian rootfs as a template and see the store's use of disk
  acetate template publish debian:12 --from /srv/rootfs
  acetate df`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	def := os.Getenv("ACETATE_ROOT")
	if def == "" {
		def = "/var/lib/acetate"
	}
	root.PersistentFlags().StringVar(&a.root, "root", def, "store root directory (env ACETATE_ROOT)")
	root.PersistentFlags().StringVar(&a.format, "format", "table", "output format: table or json")
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		if a.format != "table" && a.format != "json" {
			return usageError{fmt.Errorf("--format %q: use table or json", a.format)}
		}
		return nil
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError{err} })
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.AddCommand(newTemplateCmd(a), newDFCmd(a), newGCCmd(a), newFsckCmd(a))
	root.AddCommand(newContainerCmds(a)...)
	root.AddCommand(newRunCmds(a)...)
	root.AddCommand(newMachineCmds(a)...)
	root.AddCommand(newPauseCmds(a)...)
	root.AddCommand(newSnapshotCmd(a))
	root.AddCommand(newArchiveCmds(a)...)
	root.AddCommand(newMoveCmd(a))
	root.AddCommand(newBenchCmd(a))
	root.AddCommand(newPushCmd(a), newPullCmd(a), newVersionCmd(a))
	root.AddCommand(newCpCmd(a), newVolumeCmd(a))
	root.AddCommand(newNetworkCmd(a))
	var showVersion bool
	root.Flags().BoolVar(&showVersion, "version", false, "show the version, commit and kernel features (as acetate version)")
	root.RunE = func(c *cobra.Command, args []string) error {
		if showVersion {
			return a.printVersion()
		}
		return c.Help()
	}
	root.InitDefaultCompletionCmd() // now, so that the walk below reaches it
	refuseUnknownSubcommands(root)
	a.addCompletions(root)
	return root
}

// refuseUnknownSubcommands makes every command that has subcommands (the
// root, template) refuse an unknown one as a usage error that suggests the
// nearest names, where cobra would print help and exit 0 (or fail with
// exit 1 at the root). Without arguments such a command prints its help.
// It replaces their Args: a command with subcommands takes no other
// arguments here.
func refuseUnknownSubcommands(cmd *cobra.Command) {
	for _, c := range cmd.Commands() {
		refuseUnknownSubcommands(c)
	}
	if !cmd.HasSubCommands() {
		return
	}
	cmd.Args = unknownSubcommand
	cmd.SuggestionsMinimumDistance = 2 // what cobra uses at the root
	if cmd.RunE == nil && cmd.Run == nil {
		cmd.RunE = func(c *cobra.Command, args []string) error { return c.Help() }
	}
}

// unknownSubcommand is the Args of a command with subcommands: any
// argument left is a subcommand cobra did not find.
func unknownSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q.", args[0], cmd.CommandPath())
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		for i := range s {
			s[i] = strconv.Quote(s[i])
		}
		msg += fmt.Sprintf(" Did you mean %s?", strings.Join(s, " or "))
	} else {
		msg += fmt.Sprintf(" See '%s --help'.", cmd.CommandPath())
	}
	return usageError{errors.New(msg)}
}

// exactArgs is cobra.ExactArgs returning a usage error.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.ExactArgs(n)(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}

// minArgs is cobra.MinimumNArgs returning a usage error that says what is
// missing.
func minArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return usageError{fmt.Errorf("requires %s", what)}
		}
		return nil
	}
}

// parseRef parses a template reference given on the command line.
func parseRef(s string) (templates.Ref, error) {
	r, err := templates.ParseRef(s)
	if err != nil {
		return r, usageError{err}
	}
	return r, nil
}
