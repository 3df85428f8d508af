package logs

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ReadOptions select what Read returns, as `docker logs` flags do.
type ReadOptions struct {
	Stdout, Stderr bool
	Since, Until   time.Time // zero: unbounded
	Tail           int       // last N entries; negative: all
	Follow         bool      // keep reading new entries until Done is closed
	// Done is closed when the container has stopped: a follower then reads
	// to the end of what was written and returns. Nil means never.
	Done <-chan struct{}
	// PollInterval is how often a follower checks for new output (default 50ms).
	PollInterval time.Duration
}

// Read hands the container's stored entries to emit, oldest first, across
// rotated files, then follows new ones if asked. Entries are handed over
// whole: a caller must not keep e.Line after emit returns.
func Read(ctx context.Context, dir, id string, cfg Config, opts ReadOptions, emit func(Entry) error) error {
	o, err := parseConfig(cfg)
	if err != nil {
		return err
	}
	if o.driver == None {
		return errNoneDriver
	}
	live := Path(dir, id, cfg)
	newDecoder := func(r io.Reader) decoder { return &jsonDecoder{r: bufio.NewReader(r)} }
	if o.driver == Local {
		newDecoder = func(r io.Reader) decoder { return &localDecoder{r: bufio.NewReader(r)} }
	}
	keep := func(e Entry) bool {
		if (e.Stream == "stdout" && !opts.Stdout) || (e.Stream == "stderr" && !opts.Stderr) {
			return false
		}
		if !opts.Since.IsZero() && e.Time.Before(opts.Since) {
			return false
		}
		return opts.Until.IsZero() || !e.Time.After(opts.Until)
	}

	// Tail needs the last N kept entries of everything stored: collect them
	// in a ring before emitting. Without tail, stream straight through.
	var ring []Entry
	collect := emit
	if opts.Tail == 0 && !opts.Follow {
		return nil
	}
	if opts.Tail > 0 {
		collect = func(e Entry) error {
			e.Line = append([]byte(nil), e.Line...)
			if len(ring) == opts.Tail {
				copy(ring, ring[1:])
				ring = ring[:len(ring)-1]
			}
			ring = append(ring, e)
			return nil
		}
	} else if opts.Tail == 0 {
		collect = func(Entry) error { return nil }
	}
	for _, p := range rotatedFiles(live) {
		if err := readFile(p, newDecoder, keep, collect); err != nil {
			return err
		}
	}
	f, err := os.Open(live)
	if errors.Is(err, os.ErrNotExist) {
		f = nil
	} else if err != nil {
		return err
	}
	if f != nil {
		defer func() { f.Close() }()
	}
	var offset int64
	if f != nil {
		if offset, err = readFrom(f, 0, newDecoder, keep, collect); err != nil {
			return err
		}
	}
	for _, e := range ring {
		if err := emit(e); err != nil {
			return err
		}
	}
	if !opts.Follow {
		return nil
	}

	interval := opts.PollInterval
	if interval <= 0 {
		interval = 50 * time.Millisecond
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	stopped := false
	for {
		if f != nil {
			if offset, err = readFrom(f, offset, newDecoder, keep, emit); err != nil {
				return err
			}
		}
		// Rotation: the live name now points at a new file. Finish the old
		// one (done above), then switch.
		if nf, ok := reopenIfRotated(live, f); ok {
			if f != nil {
				f.Close()
			}
			f, offset = nf, 0
			continue
		}
		if stopped {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-opts.Done:
			stopped = true // one more pass drains what was written before the stop
		case <-tick.C:
		}
	}
}

var errNoneDriver = errors.New(`configured logging driver does not support reading: "none"`)

// rotatedFiles lists live's rotated files, oldest first.
func rotatedFiles(live string) []string {
	matches, _ := filepath.Glob(live + ".*")
	type rf struct {
		n    int
		path string
	}
	var files []rf
	for _, m := range matches {
		suffix := strings.TrimSuffix(strings.TrimPrefix(m, live+"."), ".gz")
		if n, err := strconv.Atoi(suffix); err == nil && n > 0 {
			files = append(files, rf{n, m})
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].n > files[j].n })
	out := make([]string, len(files))
	for i, f := range files {
		out[i] = f.path
	}
	return out
}

func readFile(path string, newDecoder func(io.Reader) decoder, keep func(Entry) bool, emit func(Entry) error) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil // rotated away while we listed
	}
	if err != nil {
		return err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return err
		}
		defer zr.Close()
		r = zr
	}
	return decodeAll(newDecoder(r), keep, emit, nil)
}

// readFrom decodes f from offset up to its last complete record and
// returns the offset after it; a record still being written is left for
// the next call.
func readFrom(f *os.File, offset int64, newDecoder func(io.Reader) decoder, keep func(Entry) bool, emit func(Entry) error) (int64, error) {
	err := decodeAll(newDecoder(io.NewSectionReader(f, offset, 1<<62)), keep, emit, func(n int) { offset += int64(n) })
	return offset, err
}

// decodeAll decodes until the end, calling advance (if set) with the size
// of each complete record. A torn last record ends decoding without error.
func decodeAll(d decoder, keep func(Entry) bool, emit func(Entry) error, advance func(int)) error {
	for {
		e, n, err := d.Decode()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if advance != nil {
			advance(n)
		}
		if keep(e) {
			if err := emit(e); err != nil {
				return err
			}
		}
	}
}

// reopenIfRotated opens the file now at live if it is not the one f has.
func reopenIfRotated(live string, f *os.File) (*os.File, bool) {
	st, err := os.Stat(live)
	if err != nil {
		return nil, false
	}
	if f != nil {
		if cur, err := f.Stat(); err == nil && os.SameFile(cur, st) {
			return nil, false
		}
	}
	nf, err := os.Open(live)
	if err != nil {
		return nil, false
	}
	return nf, true
}
