package main

import (
	"io"
	"os"
	"sync"

	"github.com/acetate/acetate/layers"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// barProgress renders layers.Progress as a progress bar on stderr.
type barProgress struct {
	mu  sync.Mutex
	bar *progressbar.ProgressBar
}

func (p *barProgress) Total(n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.bar.ChangeMax64(n)
}

func (p *barProgress) Advance(n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.bar.Add64(n)
}

func (p *barProgress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.bar.Finish()
}

// progress returns a progress bar for a long operation when stderr is a
// terminal, and nil (no output) otherwise. done removes the bar.
func (a *app) progress(what string, unitBytes bool) (p layers.Progress, done func()) {
	f, ok := a.stderr.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil, func() {}
	}
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(io.Writer(f)),
		progressbar.OptionSetDescription(what),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionShowCount(),
		progressbar.OptionThrottle(100_000_000),
	}
	if unitBytes {
		opts = append(opts, progressbar.OptionShowBytes(true))
	}
	bp := &barProgress{bar: progressbar.NewOptions64(-1, opts...)}
	return bp, bp.finish
}
