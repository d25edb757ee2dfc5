package templates

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/acetate/acetate/layers"
)

// PublishOptions change what Publish makes.
type PublishOptions struct {
	// Base, when set, makes an application template: one layer with only
	// what differs from Base, stacked on Base's layers.
	Base *Ref
	// Config is the run configuration; empty fields inherit from Base.
	Config Config
	// Tar changes how tar sources are read.
	Tar layers.TarOptions
	// Progress receives bytes hashed and stored.
	Progress layers.Progress
	// Stdin is read when the source is "-".
	Stdin io.Reader
}

// Publish reads source (a directory, a tar file in any supported
// compression, or "-" for Stdin) and points r at the result. On any error
// nothing is referenced and the store is as before, but for staged files
// in tmp/ that GC removes.
func (s *Store) Publish(ctx context.Context, r Ref, source string, opts PublishOptions) (*Template, error) {
	if opts.Base != nil && *opts.Base == r {
		return nil, fmt.Errorf("publish %s --on %s: %w", r, *opts.Base, ErrSelfBase)
	}
	if _, err := s.RemoveStaleStaging(); err != nil {
		return nil, err
	}
	lock, err := s.Layers.LockShared()
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()

	t := &Template{Ref: r, Config: opts.Config, Created: time.Now().UTC()}
	var base []layers.Entry
	if opts.Base != nil {
		bt, err := s.Get(*opts.Base)
		if err != nil {
			return nil, fmt.Errorf("base template: %w", err)
		}
		if base, err = s.Entries(bt); err != nil {
			return nil, err
		}
		t.Layers, t.Base = append(t.Layers, bt.Layers...), bt.Ref.String()
		t.Config = inheritConfig(opts.Config, bt.Config)
	}
	tree, err := s.readSource(ctx, source, opts)
	if err != nil {
		return nil, err
	}
	m := tree.Manifest
	if opts.Base != nil {
		m = layers.Diff(base, m.Entries)
	}
	d, err := tree.Commit(m)
	if err != nil {
		return nil, fmt.Errorf("publish %s: %w", r, err)
	}
	t.Layers = append(t.Layers, d)
	if err := s.save(t); err != nil {
		return nil, err
	}
	return t, nil
}

// readSource reads a directory, a tar file or stdin.
func (s *Store) readSource(ctx context.Context, source string, opts PublishOptions) (*layers.Tree, error) {
	if source == "-" {
		if opts.Stdin == nil {
			return nil, fmt.Errorf("source \"-\": no standard input")
		}
		t, err := s.Layers.ReadTar(ctx, opts.Stdin, opts.Tar, opts.Progress)
		if err != nil {
			return nil, fmt.Errorf("source stdin: %w", err)
		}
		return t, nil
	}
	fi, err := os.Stat(source)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	if fi.IsDir() {
		return s.Layers.ReadDir(ctx, source, opts.Progress)
	}
	f, err := os.Open(source)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	defer f.Close()
	t, err := s.Layers.ReadTar(ctx, f, opts.Tar, opts.Progress)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", source, err)
	}
	return t, nil
}

func inheritConfig(c, base Config) Config {
	if c.Cmd == nil {
		c.Cmd = base.Cmd
	}
	c.Env = append(append([]string(nil), base.Env...), c.Env...)
	if c.WorkingDir == "" {
		c.WorkingDir = base.WorkingDir
	}
	if c.User == "" {
		c.User = base.User
	}
	if c.Hostname == "" {
		c.Hostname = base.Hostname
	}
	return c
}
