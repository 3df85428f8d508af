// Package mountinfo lists the mount points of the calling thread's mount
// namespace, as /proc/thread-self/mountinfo gives them. Not /proc/self:
// that is the main thread's, which need not be in the process's own
// namespaces (see cmd/berth/init.go).
package mountinfo

import (
	"bufio"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
)

// Under returns the mount points strictly below dir, plus dir itself when
// it is a mount point and self is true, deepest first (a child before its
// parent, the order to unmount them in).
func Under(dir string, self bool) ([]string, error) {
	f, err := os.Open("/proc/thread-self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return under(f, dir, self)
}

// Busy reports whether anything is mounted at or below dir, or whether
// it cannot tell: callers use it to never delete through a mount.
func Busy(dir string) bool {
	mps, err := Under(dir, true)
	return err != nil || len(mps) > 0
}

func under(r io.Reader, dir string, self bool) ([]string, error) {
	dir = strings.TrimSuffix(dir, "/")
	var out []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := Unescape(fields[4])
		if strings.HasPrefix(mp, dir+"/") || self && mp == dir {
			out = append(out, mp)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	sort.SliceStable(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out, nil
}

// Unescape undoes mountinfo's octal escapes (\040 for a space, \011 for a
// tab, \012 for a newline, \134 for a backslash).
func Unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
