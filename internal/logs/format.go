package logs

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
	"unicode/utf8"
)

// encodeJSON writes Docker's json-file line:
// {"log":"...","stream":"stdout","time":"2006-01-02T15:04:05.999999999Z"}
// The log text is escaped as encoding/json would, byte for byte compatible
// with what `docker logs` and log shippers read.
func encodeJSON(buf []byte, e Entry) []byte {
	buf = append(buf, `{"log":`...)
	buf = appendJSONString(buf, e.Line)
	buf = append(buf, `,"stream":"`...)
	buf = append(buf, e.Stream...)
	buf = append(buf, `","time":"`...)
	buf = e.Time.UTC().AppendFormat(buf, time.RFC3339Nano)
	return append(buf, "\"}\n"...)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string, escaping like encoding/json
// (including <, >, & and invalid UTF-8 as \ufffd).
func appendJSONString(buf, s []byte) []byte {
	buf = append(buf, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				buf = append(buf, '\\', c)
			case c == '\n':
				buf = append(buf, '\\', 'n')
			case c == '\r':
				buf = append(buf, '\\', 'r')
			case c == '\t':
				buf = append(buf, '\\', 't')
			case c == '\b':
				buf = append(buf, '\\', 'b')
			case c == '\f':
				buf = append(buf, '\\', 'f')
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				buf = append(buf, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				buf = append(buf, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			buf = append(buf, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			buf = append(buf, `\u202`...)
			buf = append(buf, hexDigits[r&0xf])
		default:
			buf = append(buf, s[i:i+size]...)
		}
		i += size
	}
	return append(buf, '"')
}

// jsonLine is a json-file line as decoded.
type jsonLine struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

// decoder reads entries one at a time from a log file's bytes.
type decoder interface {
	// Decode returns the next entry and the bytes its record took; io.EOF
	// at a clean end, io.ErrUnexpectedEOF on a torn (still written) record.
	Decode() (Entry, int, error)
}

type jsonDecoder struct{ r *bufio.Reader }

func (d *jsonDecoder) Decode() (Entry, int, error) {
	line, err := d.r.ReadBytes('\n')
	if err == io.EOF && len(line) > 0 {
		return Entry{}, 0, io.ErrUnexpectedEOF // a line still being written
	}
	if err != nil {
		return Entry{}, 0, err
	}
	var l jsonLine
	if err := json.Unmarshal(line, &l); err != nil {
		return Entry{}, 0, fmt.Errorf("corrupt json-file log line: %w", err)
	}
	return Entry{Stream: l.Stream, Line: []byte(l.Log), Time: l.Time, Partial: len(l.Log) > 0 && l.Log[len(l.Log)-1] != '\n'}, len(line), nil
}

// The local format frames each entry as
//
//	u32 length | u8 stream (1 stdout, 2 stderr) | u8 flags (1 partial) | i64 unix nanos | line | u32 length
//
// big-endian; the trailing length lets a reader walk backwards for --tail
// and detect a torn last record.
const localHeader = 4 + 1 + 1 + 8

func encodeLocal(buf []byte, e Entry) []byte {
	n := uint32(localHeader + len(e.Line) + 4)
	buf = binary.BigEndian.AppendUint32(buf, n)
	stream := byte(1)
	if e.Stream == "stderr" {
		stream = 2
	}
	var flags byte
	if e.Partial {
		flags = 1
	}
	buf = append(buf, stream, flags)
	buf = binary.BigEndian.AppendUint64(buf, uint64(e.Time.UnixNano()))
	buf = append(buf, e.Line...)
	return binary.BigEndian.AppendUint32(buf, n)
}

type localDecoder struct{ r *bufio.Reader }

// maxRecord bounds a record's claimed size, so a corrupt length cannot make
// the reader allocate gigabytes.
const maxRecord = 1 << 20

func (d *localDecoder) Decode() (Entry, int, error) {
	var hdr [localHeader]byte
	if _, err := io.ReadFull(d.r, hdr[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return Entry{}, 0, io.EOF
		}
		return Entry{}, 0, io.ErrUnexpectedEOF
	}
	n := binary.BigEndian.Uint32(hdr[:4])
	if n < localHeader+4 || n > maxRecord {
		return Entry{}, 0, fmt.Errorf("corrupt local log record: length %d", n)
	}
	rest := make([]byte, n-localHeader)
	if _, err := io.ReadFull(d.r, rest); err != nil {
		return Entry{}, 0, io.ErrUnexpectedEOF
	}
	if binary.BigEndian.Uint32(rest[len(rest)-4:]) != n {
		return Entry{}, 0, fmt.Errorf("corrupt local log record: trailer mismatch")
	}
	e := Entry{Stream: "stdout", Line: rest[:len(rest)-4], Time: time.Unix(0, int64(binary.BigEndian.Uint64(hdr[6:14]))).UTC(), Partial: hdr[5]&1 != 0}
	if hdr[4] == 2 {
		e.Stream = "stderr"
	}
	return e, int(n), nil
}
