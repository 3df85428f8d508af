// Package rawproc reads this process's files of /proc with package syscall
// alone, for the packages that run while the binary starts (prefault,
// ociruntime/spawn), before Go has initialised os, strings or path: a
// package importing those is initialised ≈ 10 ms after exec here, one
// importing only syscall ≈ 4 ms after.
package rawproc

import "syscall"

// Args is this process's command line, from /proc/self/cmdline (package
// os, whose os.Args has it, is not initialised yet): up to 4 KiB of it,
// which holds every argument that decides anything this early.
func Args() []string { return SplitNUL(ReadFile("/proc/self/cmdline", 4<<10)) }

// ReadFile reads up to max bytes of a file; nil if it cannot be opened.
func ReadFile(name string, max int) []byte {
	fd, err := syscall.Open(name, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	defer syscall.Close(fd)
	buf := make([]byte, max)
	n := 0
	for n < max {
		m, err := syscall.Read(fd, buf[n:])
		if err != nil || m <= 0 {
			break
		}
		n += m
	}
	return buf[:n]
}

// SplitNUL splits a NUL-separated list, as /proc/PID/cmdline holds, into
// its strings.
func SplitNUL(b []byte) []string {
	var out []string
	for len(b) > 0 {
		i := 0
		for i < len(b) && b[i] != 0 {
			i++
		}
		out = append(out, string(b[:i]))
		if i == len(b) {
			break
		}
		b = b[i+1:]
	}
	return out
}
