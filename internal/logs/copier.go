package logs

import (
	"bytes"
	"io"
	"time"
)

// MaxLine is the longest piece of a line stored as one entry; a longer line
// is stored as several entries marked Partial, as Docker does.
const MaxLine = 16 << 10

// LineWriter turns a container stream, written in chunks of any size, into
// log entries: one per line, stamped with the time its end arrived. A line
// longer than MaxLine is handed over in pieces marked Partial; the
// unterminated tail is held until more arrives, or handed over as Partial
// by Close. It is not safe for concurrent use: one per stream.
type LineWriter struct {
	stream  string
	sink    func(Entry) error
	now     func() time.Time
	pending []byte // an unterminated line, shorter than MaxLine
}

// NewLineWriter returns a LineWriter for stream ("stdout" or "stderr")
// handing entries to sink. now is time.Now unless a test fixes it.
func NewLineWriter(stream string, sink func(Entry) error, now func() time.Time) *LineWriter {
	if now == nil {
		now = time.Now
	}
	return &LineWriter{stream: stream, sink: sink, now: now}
}

// Write splits p into entries. The sink must not keep e.Line.
func (w *LineWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			room := MaxLine - len(w.pending)
			if len(p) < room {
				w.pending = append(w.pending, p...)
				return n, nil
			}
			w.pending = append(w.pending, p[:room]...)
			p = p[room:]
			if err := w.emit(true); err != nil {
				return 0, err
			}
			continue
		}
		line := p[:i+1]
		p = p[i+1:]
		for len(w.pending)+len(line) > MaxLine {
			room := MaxLine - len(w.pending)
			w.pending = append(w.pending, line[:room]...)
			line = line[room:]
			if err := w.emit(true); err != nil {
				return 0, err
			}
		}
		w.pending = append(w.pending, line...)
		if err := w.emit(false); err != nil {
			return 0, err
		}
	}
	return n, nil
}

func (w *LineWriter) emit(partial bool) error {
	err := w.sink(Entry{Stream: w.stream, Line: w.pending, Time: w.now(), Partial: partial})
	w.pending = w.pending[:0]
	return err
}

// Close hands over an unterminated tail, marked Partial.
func (w *LineWriter) Close() error {
	if len(w.pending) == 0 {
		return nil
	}
	return w.emit(true)
}

// Copy reads one stream of a container's output until EOF through a
// LineWriter, then closes it.
func Copy(r io.Reader, stream string, sink func(Entry) error, now func() time.Time) error {
	w := NewLineWriter(stream, sink, now)
	if _, err := io.Copy(w, r); err != nil {
		return err
	}
	return w.Close()
}
