package dockerapi

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"sync"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/jsonstream"

	"github.com/berth/berth/internal/errdefs"
)

// Stream IDs of Docker's multiplexed stream format.
const (
	streamStdin  = 0
	streamStdout = 1
	streamStderr = 2
	streamSystem = 3 // an error from the daemon, ending the stream
)

// muxWriter frames writes for one stream of Docker's multiplexed format:
// an 8-byte header (stream id, 3 zero bytes, big-endian length), then the
// payload. Writers for several streams may share one underlying writer:
// each frame is written with a single Write under the shared lock.
type muxWriter struct {
	mu     *sync.Mutex
	w      io.Writer
	stream byte
}

// newMuxWriters returns writers for stdout and stderr over w.
func newMuxWriters(w io.Writer) (stdout, stderr io.Writer) {
	mu := &sync.Mutex{}
	return &muxWriter{mu: mu, w: w, stream: streamStdout}, &muxWriter{mu: mu, w: w, stream: streamStderr}
}

func (m *muxWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	frame := make([]byte, 8+len(p))
	frame[0] = m.stream
	binary.BigEndian.PutUint32(frame[4:8], uint32(len(p)))
	copy(frame[8:], p)
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.w.Write(frame); err != nil {
		return 0, err
	}
	return len(p), nil
}

// hijack takes over the connection of an attach or exec-start request, as
// Docker does: with "Upgrade: tcp" it answers 101 UPGRADED, otherwise 200
// OK, then the connection carries raw bytes both ways. multiplexed says
// whether the output is in the multiplexed format (no TTY) or raw (TTY).
// The caller owns the returned connection and must close it.
func hijack(w http.ResponseWriter, r *http.Request, multiplexed bool) (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return nil, nil, errdefs.Invalidf("this connection cannot be hijacked for streaming")
	}
	conn, rw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	contentType := "application/vnd.docker.raw-stream"
	if multiplexed {
		contentType = "application/vnd.docker.multiplexed-stream"
	}
	head := "HTTP/1.1 200 OK\r\nContent-Type: " + contentType + "\r\n\r\n"
	if r.Header.Get("Upgrade") != "" {
		head = "HTTP/1.1 101 UPGRADED\r\nContent-Type: " + contentType + "\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
	}
	if _, err := rw.WriteString(head); err != nil {
		conn.Close()
		return nil, nil, err
	}
	if err := rw.Flush(); err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, rw, nil
}

// progressMessage is a line of Docker's JSON progress stream. Besides the
// structured fields it carries the legacy "progress" and "error" strings,
// which clients print when they do not draw bars themselves.
type progressMessage struct {
	jsonstream.Message
	ProgressText string `json:"progress,omitempty"`
	ErrorText    string `json:"error,omitempty"`
}

// progressWriter streams progress messages as newline-delimited JSON,
// flushing each so clients draw as it happens. Safe for concurrent use:
// layers report from their own goroutines.
type progressWriter struct {
	mu  sync.Mutex // guards enc and the response writer
	enc *json.Encoder
	f   http.Flusher
}

func newProgressWriter(w http.ResponseWriter) *progressWriter {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	f, _ := w.(http.Flusher)
	return &progressWriter{enc: json.NewEncoder(w), f: f}
}

// Send writes one message.
func (p *progressWriter) Send(m jsonstream.Message) error {
	pm := progressMessage{Message: m}
	if m.Progress != nil && m.Progress.Total > 0 {
		pm.ProgressText = progressBar(m.Progress.Current, m.Progress.Total)
	}
	return p.write(pm)
}

// Fail ends the stream with an error, the way Docker reports a failure
// after the 200 status has been sent.
func (p *progressWriter) Fail(err error) error {
	return p.write(progressMessage{Message: jsonstream.Message{Error: &jsonstream.Error{Message: err.Error()}}, ErrorText: err.Error()})
}

func (p *progressWriter) write(pm progressMessage) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.enc.Encode(pm); err != nil {
		return err
	}
	if p.f != nil {
		p.f.Flush()
	}
	return nil
}

// progressBar renders Docker's text bar: [=====>      ]  1.2MB/3.4MB
func progressBar(current, total int64) string {
	const width = 50
	n := int(float64(width) * float64(current) / float64(total))
	if n > width {
		n = width
	}
	bar := make([]byte, width)
	for i := range bar {
		switch {
		case i < n-1 || (i == n-1 && n == width):
			bar[i] = '='
		case i == n-1:
			bar[i] = '>'
		default:
			bar[i] = ' '
		}
	}
	return "[" + string(bar) + "]  " + units.HumanSize(float64(current)) + "/" + units.HumanSize(float64(total))
}
