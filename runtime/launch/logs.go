package launch

import (
	"bufio"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/acetate/acetate/runtime"
)

// LogOptions say which lines of a container's log FollowLog prints, and
// how.
type LogOptions struct {
	// Stdout and Stderr receive the lines the container wrote to each.
	Stdout, Stderr io.Writer
	// Follow keeps printing what the container writes until it ends, Until
	// passes, or the context is done.
	Follow bool
	// Tail, when 0 or more, starts at the last Tail lines.
	Tail int
	// Since and Until, when not zero, print only the lines logged in
	// [Since, Until]. Lines of the plain format that logs had before
	// records, which have no time, are then left out.
	Since, Until time.Time
	// Timestamps prefixes each line with its time (RFC 3339 with
	// nanoseconds) and a space; a line of the plain format has none.
	Timestamps bool
}

// FollowLog prints the log of container name as o says: each line to the
// stream the container wrote it to.
func FollowLog(ctx context.Context, l *Launcher, name string, o LogOptions) error {
	f, err := os.Open(l.LogPath(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil // never started: no output yet
	}
	if err != nil {
		return err
	}
	defer f.Close()
	lr := &logReader{r: bufio.NewReader(f)}
	recs, err := lr.read(!o.Follow)
	if err != nil {
		return err
	}
	recs = o.filter(recs)
	if o.Tail >= 0 && len(recs) > o.Tail {
		recs = recs[len(recs)-o.Tail:]
	}
	if err := o.write(recs); err != nil || !o.Follow {
		return err
	}
	return o.follow(ctx, l, name, lr)
}

// follow prints the lines appended to the log until the container ends,
// Until passes or ctx is done.
func (o *LogOptions) follow(ctx context.Context, l *Launcher, name string, lr *logReader) error {
	for {
		rs, err := runtime.LoadState(l.m.RunDir(name))
		if err != nil {
			return err
		}
		end := !rs.Running || (!o.Until.IsZero() && time.Now().After(o.Until))
		recs, err := lr.read(end) // after the state: all it wrote, once it has ended
		if err != nil {
			return err
		}
		if err := o.write(o.filter(recs)); err != nil || end {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// filter keeps the records of recs logged in [Since, Until].
func (o *LogOptions) filter(recs []runtime.LogRecord) []runtime.LogRecord {
	if o.Since.IsZero() && o.Until.IsZero() {
		return recs
	}
	kept := recs[:0]
	for _, r := range recs {
		if !r.Time.IsZero() && !r.Time.Before(o.Since) && (o.Until.IsZero() || !r.Time.After(o.Until)) {
			kept = append(kept, r)
		}
	}
	return kept
}

// write prints recs, each to its stream.
func (o *LogOptions) write(recs []runtime.LogRecord) error {
	for _, r := range recs {
		w := o.Stdout
		if r.Stream == runtime.StreamStderr {
			w = o.Stderr
		}
		var b []byte
		if o.Timestamps && !r.Time.IsZero() {
			b = append(r.Time.AppendFormat(b, time.RFC3339Nano), ' ')
		}
		b = append(b, r.Text...)
		if !r.Partial {
			b = append(b, '\n')
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// logReader reads the records of a log as they are appended.
type logReader struct {
	r *bufio.Reader
	// part is the start of a line whose newline is not written yet.
	part []byte
}

// read returns the records of the lines appended since the last read. With
// end (nothing more will be written) an unended last line is one too: a
// line of the plain format, where the container's last line had no newline.
func (lr *logReader) read(end bool) ([]runtime.LogRecord, error) {
	var recs []runtime.LogRecord
	for {
		b, err := lr.r.ReadBytes('\n')
		line := append(lr.part, b...)
		lr.part = nil
		switch {
		case errors.Is(err, io.EOF) && (len(line) == 0 || !end):
			lr.part = line
			return recs, nil
		case errors.Is(err, io.EOF):
			r := runtime.ParseLogLine(line)
			r.Partial = true
			return append(recs, r), nil
		case err != nil:
			return recs, err
		}
		recs = append(recs, runtime.ParseLogLine(line[:len(line)-1]))
	}
}
