// Package blob holds the bytes of the programs berth carries (the static
// container init and the user-namespace entry helper) and the file names
// they are installed under. It imports nothing that Go must initialise, so
// a package that runs while the binary starts (the early spare of
// ociruntime/spawn) can reach them before the rest of berth is
// initialised; package initbin installs them.
package blob

import "syscall"

// Installed is where a program named name, of size bytes with digest id,
// is installed in dir ("" when id is too short), and whether a whole copy
// is there: a regular file of that size, mode 0555, as package initbin
// writes it. It uses package syscall alone, like the package.
func Installed(dir, name, id string, size int) (file string, whole bool) {
	base := FileName(name, id)
	if base == "" {
		return "", false
	}
	file = dir + "/" + base
	var st syscall.Stat_t
	whole = syscall.Stat(file, &st) == nil && st.Mode&syscall.S_IFMT == syscall.S_IFREG &&
		st.Mode&0o777 == 0o555 && st.Size == int64(size)
	return file, whole
}

// FileName is the name a program is installed under in its directory:
// <name>-<first 12 hex digits of its SHA-256>, so a new build's program
// never replaces a running one's. It returns "" when id, a hex digest
// with surrounding space (as sha256sum writes it), is too short.
func FileName(name, id string) string {
	start, end := 0, len(id)
	for start < end && isSpace(id[start]) {
		start++
	}
	for end > start && isSpace(id[end-1]) {
		end--
	}
	if end-start < 12 {
		return ""
	}
	return name + "-" + id[start:start+12]
}

func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\t' || c == '\r' }
