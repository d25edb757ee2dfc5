package runtime

import (
	"bytes"
	"io"
	"sync"
	"time"
)

// A detached container's log (the state directory's log file) is a
// sequence of records, one a line, in the CRI logging format that the
// kubelet writes:
//
//	2026-12-01T07:40:02.123456789Z stderr F text of the line
//
// the time the supervisor read the line (UTC, RFC 3339 with nanoseconds), the
// stream (stdout or stderr), a tag (F: a newline ended the text; P: none
// did, the line is longer than maxLogText or its stream ended without one)
// and the text as the container wrote it. Records rather than docker's JSON
// objects: the text is kept byte for byte (JSON would replace bytes that
// are not UTF-8), a line is read without a decoder, and grep finds what
// the container wrote. Records rather than a file per stream plus an
// index: one file keeps the order in which the lines of both streams came,
// and is appended to with one write per line. Logs written before records
// were (the streams merged, no times) stay readable: a line that is not a
// record is read as such a line (see ParseLogLine).

// Log streams.
const (
	StreamStdout = "stdout"
	StreamStderr = "stderr"
)

// maxLogText bounds a record's text: a longer line is split into records
// tagged P.
const maxLogText = 16 << 10

// LogRecord is one record of a detached container's log.
type LogRecord struct {
	// Time is when the supervisor read the line; zero for a line of the plain
	// format that logs had before records.
	Time time.Time
	// Stream is StreamStdout or StreamStderr.
	Stream string
	// Text is the text, without the newline that ended it.
	Text []byte
	// Partial reports that no newline ended Text.
	Partial bool
}

// ParseLogLine parses line, one line of a log without its newline. A line
// that is not a record is one of the plain format (both streams in one,
// no times): a stdout record without a time.
func ParseLogLine(line []byte) LogRecord {
	plain := LogRecord{Stream: StreamStdout, Text: line}
	f := bytes.SplitN(line, []byte(" "), 4)
	if len(f) != 4 {
		return plain
	}
	t, err := time.Parse(time.RFC3339Nano, string(f[0]))
	stream := string(f[1])
	if err != nil || (stream != StreamStdout && stream != StreamStderr) {
		return plain
	}
	switch string(f[2]) {
	case "F":
		return LogRecord{Time: t, Stream: stream, Text: f[3]}
	case "P":
		return LogRecord{Time: t, Stream: stream, Text: f[3], Partial: true}
	}
	return plain
}

// logWriter writes the records of one stream to a log shared with the
// other stream's writer: an io.Writer that exec.Cmd copies a pipe into.
type logWriter struct {
	mu     *sync.Mutex // shared by the writers of one log
	log    io.Writer
	stream string
	line   []byte // the start of a line not ended yet
}

// newLogWriters returns the writers of stdout and stderr to log.
func newLogWriters(log io.Writer) (stdout, stderr *logWriter) {
	mu := &sync.Mutex{}
	return &logWriter{mu: mu, log: log, stream: StreamStdout}, &logWriter{mu: mu, log: log, stream: StreamStderr}
}

// logReadSize is the buffer ReadFrom reads a stream with: the supervisor
// reads two streams of every running container at once, and io.Copy's
// 32 KiB apiece were most of what a container cost it.
const logReadSize = 2 << 10

// ReadFrom writes what r gives (a container's stream, which exec.Cmd
// copies here) until its end, a small buffer at a time.
func (w *logWriter) ReadFrom(r io.Reader) (int64, error) {
	buf := make([]byte, logReadSize)
	var total int64
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return total, werr
			}
			total += int64(n)
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// Write writes a record for each line that p ends, and keeps the rest for
// the next Write (see flush).
func (w *logWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.line = append(w.line, p...)
			break
		}
		w.line = append(w.line, p[:i]...)
		p = p[i+1:]
		if err := w.records(maxLogText + 1); err != nil {
			return 0, err
		}
		if err := w.record(false); err != nil {
			return 0, err
		}
	}
	if err := w.records(maxLogText); err != nil {
		return 0, err
	}
	return n, nil
}

// records writes the line kept as records tagged P while at least limit
// bytes of it are left.
func (w *logWriter) records(limit int) error {
	for len(w.line) >= limit {
		if err := w.record(true); err != nil {
			return err
		}
	}
	return nil
}

// flush writes the unended last line, once the stream has ended.
func (w *logWriter) flush() error {
	if len(w.line) == 0 {
		return nil
	}
	return w.record(true)
}

// record writes the line kept (at most maxLogText of it) as one record in
// one write, and drops what it wrote.
func (w *logWriter) record(partial bool) error {
	text := w.line[:min(len(w.line), maxLogText)]
	tag := " F "
	if partial {
		tag = " P "
	}
	w.mu.Lock() // before the time: the log's records are in time order
	defer w.mu.Unlock()
	rec := make([]byte, 0, 48+len(text))
	rec = time.Now().UTC().AppendFormat(rec, time.RFC3339Nano)
	rec = append(append(append(append(rec, ' '), w.stream...), tag...), text...)
	_, err := w.log.Write(append(rec, '\n'))
	w.line = append(w.line[:0], w.line[len(text):]...)
	return err
}
