package runtime

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// The writers of both streams make records of whole lines, split lines
// longer than maxLogText, and flush an unended last line tagged P; the
// records parse back to what was written, and a plain line parses as
// stdout without a time.
func TestLogRecords(t *testing.T) {
	var log bytes.Buffer
	stdout, stderr := newLogWriters(&log)
	long := strings.Repeat("x", maxLogText+5)
	for _, w := range []struct {
		w *logWriter
		s string
	}{{stdout, "one\ntw"}, {stderr, "e 1\n"}, {stdout, "o\n\n"}, {stderr, long + "\nend"}} {
		if n, err := w.w.Write([]byte(w.s)); n != len(w.s) || err != nil {
			t.Fatalf("Write %q: %d, %v", w.s, n, err)
		}
	}
	if err := stderr.flush(); err != nil {
		t.Fatal(err)
	}
	want := []LogRecord{{Stream: StreamStdout, Text: []byte("one")}, {Stream: StreamStderr, Text: []byte("e 1")},
		{Stream: StreamStdout, Text: []byte("two")}, {Stream: StreamStdout}, {Stream: StreamStderr, Text: []byte(long[:maxLogText]), Partial: true},
		{Stream: StreamStderr, Text: []byte("xxxxx")}, {Stream: StreamStderr, Text: []byte("end"), Partial: true}}
	lines := strings.Split(strings.TrimSuffix(log.String(), "\n"), "\n")
	if len(lines) != len(want) {
		t.Fatalf("%d records, want %d:\n%.2000s", len(lines), len(want), log.String())
	}
	for i, line := range lines {
		r := ParseLogLine([]byte(line))
		if time.Since(r.Time) > time.Minute || r.Stream != want[i].Stream || !bytes.Equal(r.Text, want[i].Text) || r.Partial != want[i].Partial {
			t.Errorf("record %d %.60q: %v %s %.20q partial %v, want %s %.20q partial %v", i, line,
				r.Time, r.Stream, r.Text, r.Partial, want[i].Stream, want[i].Text, want[i].Partial)
		}
	}
	for _, plain := range []string{"", "plain text", "2026-12-01T07:40:02Z stdin F x", "yesterday stdout F x", "2026-12-01T07:40:02Z stdout X x"} {
		if r := ParseLogLine([]byte(plain)); !r.Time.IsZero() || r.Stream != StreamStdout || string(r.Text) != plain || r.Partial {
			t.Errorf("plain line %q: %+v", plain, r)
		}
	}
}
