// Package blob holds the bytes of the programs berth carries (the static
// container init and the user-namespace entry helper) and the file names
// they are installed under. It imports nothing that Go must initialise, so
// a package that runs while the binary starts (the early spare of
// ociruntime/spawn) can reach them before the rest of berth is
// initialised; package initbin installs them.
package blob

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
