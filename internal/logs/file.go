package logs

import (
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"sync"
)

// encoder appends the encoding of e to buf.
type encoder func(buf []byte, e Entry) []byte

// fileDriver appends encoded entries to a file and rotates it at maxSize:
// name → name.1 → name.2 ... (name.N.gz when compressed), keeping maxFile
// files in all.
type fileDriver struct {
	path string
	opts options
	enc  encoder

	mu   sync.Mutex // guards everything below
	f    *os.File
	size int64
	buf  []byte
}

func openFileDriver(path string, o options, enc encoder) (*fileDriver, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &fileDriver{path: path, opts: o, enc: enc, f: f, size: fi.Size()}, nil
}

func (d *fileDriver) Write(e Entry) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		return os.ErrClosed
	}
	d.buf = d.enc(d.buf[:0], e)
	if d.opts.maxSize > 0 && d.size > 0 && d.size+int64(len(d.buf)) > d.opts.maxSize {
		if err := d.rotate(); err != nil {
			return err
		}
	}
	n, err := d.f.Write(d.buf)
	d.size += int64(n)
	return err
}

// rotate shifts the rotated files up by one, dropping the oldest, and
// starts a new live file. Preconditions: d.mu held.
func (d *fileDriver) rotate() error {
	if err := d.f.Close(); err != nil {
		return err
	}
	d.f = nil
	if d.opts.maxFile <= 1 {
		// Only the live file is kept: start it afresh.
		f, err := os.OpenFile(d.path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o640)
		if err != nil {
			return fmt.Errorf("rotate log: %w", err)
		}
		d.f, d.size = f, 0
		return nil
	}
	ext := ""
	if d.opts.compress {
		ext = ".gz"
	}
	os.Remove(fmt.Sprintf("%s.%d%s", d.path, d.opts.maxFile-1, ext))
	for i := d.opts.maxFile - 2; i >= 1; i-- {
		os.Rename(fmt.Sprintf("%s.%d%s", d.path, i, ext), fmt.Sprintf("%s.%d%s", d.path, i+1, ext))
	}
	if d.opts.compress {
		if err := compressFile(d.path, d.path+".1.gz"); err != nil {
			return err
		}
		os.Remove(d.path)
	} else if err := os.Rename(d.path, d.path+".1"); err != nil {
		return fmt.Errorf("rotate log: %w", err)
	}
	f, err := os.OpenFile(d.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("rotate log: %w", err)
	}
	d.f, d.size = f, 0
	return nil
}

// compressFile writes src gzipped to dst, through a temporary name so a
// crash never leaves a truncated dst.
func compressFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	zw := gzip.NewWriter(out)
	_, err = io.Copy(zw, in)
	if cerr := zw.Close(); err == nil {
		err = cerr
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("compress rotated log: %w", err)
	}
	return os.Rename(tmp, dst)
}

func (d *fileDriver) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		return nil
	}
	err := d.f.Close()
	d.f = nil
	return err
}
