package logs

import (
	"bufio"
	"errors"
	"io"
	"time"
)

// MaxLine is the longest piece of a line stored as one entry; a longer line
// is stored as several entries marked Partial, as Docker does.
const MaxLine = 16 << 10

// Copy reads one stream of a container's output until EOF and hands each
// line to sink, stamped with the time it was read. A line longer than
// MaxLine, or the unterminated tail of the stream, is handed over in pieces
// marked Partial. now is time.Now unless a test fixes it.
func Copy(r io.Reader, stream string, sink func(Entry) error, now func() time.Time) error {
	if now == nil {
		now = time.Now
	}
	br := bufio.NewReaderSize(r, MaxLine)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			e := Entry{Stream: stream, Line: line, Time: now(), Partial: line[len(line)-1] != '\n'}
			if serr := sink(e); serr != nil {
				return serr
			}
		}
		switch {
		case err == nil, errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			return nil
		default:
			return err
		}
	}
}
