package spec

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
)

// User is one line of an /etc/passwd file.
type User struct {
	Name string
	UID  int
	GID  int
	Home string
}

// Group is one line of an /etc/group file.
type Group struct {
	Name    string
	GID     int
	Members []string
}

// UserDB is the image's user and group database (its /etc/passwd and
// /etc/group). A missing file is not an error: it reads as no entries.
type UserDB interface {
	Users() ([]User, error)
	Groups() ([]Group, error)
}

// MapUserDB is a UserDB held in memory, for tests and for callers that
// already parsed the files.
type MapUserDB struct {
	UserList  []User
	GroupList []Group
}

// Users returns the users.
func (m MapUserDB) Users() ([]User, error) { return m.UserList, nil }

// Groups returns the groups.
func (m MapUserDB) Groups() ([]Group, error) { return m.GroupList, nil }

// maxDBFile bounds how much of /etc/passwd or /etc/group is read: an image
// could ship a huge (or endless, e.g. a symlink to /dev/zero resolved inside
// the root) file to make the daemon spend memory.
const maxDBFile = 4 << 20

// RootfsUserDB reads /etc/passwd and /etc/group from a container's root
// filesystem. Symlinks are resolved inside the root (os.Root), so an image
// cannot make the daemon read a host file such as the host's /etc/shadow.
type RootfsUserDB struct {
	Rootfs string
}

// Users parses the rootfs's /etc/passwd.
func (r RootfsUserDB) Users() ([]User, error) {
	b, err := r.read("etc/passwd")
	if err != nil || b == nil {
		return nil, err
	}
	return ParsePasswd(strings.NewReader(string(b))), nil
}

// Groups parses the rootfs's /etc/group.
func (r RootfsUserDB) Groups() ([]Group, error) {
	b, err := r.read("etc/group")
	if err != nil || b == nil {
		return nil, err
	}
	return ParseGroup(strings.NewReader(string(b))), nil
}

func (r RootfsUserDB) read(name string) ([]byte, error) {
	root, err := os.OpenRoot(r.Rootfs)
	if err != nil {
		return nil, fmt.Errorf("open rootfs %s: %w", r.Rootfs, err)
	}
	defer root.Close()
	f, err := root.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open /%s in rootfs: %w", name, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat /%s in rootfs: %w", name, err)
	}
	if !st.Mode().IsRegular() {
		// A FIFO, device or directory is not a user database; reading a
		// FIFO would block the daemon forever.
		return nil, nil
	}
	b, err := io.ReadAll(io.LimitReader(f, maxDBFile))
	if err != nil {
		return nil, fmt.Errorf("read /%s in rootfs: %w", name, err)
	}
	return b, nil
}

// ParsePasswd parses an /etc/passwd file, skipping malformed lines.
func ParsePasswd(r io.Reader) []User {
	var out []User
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) < 4 {
			continue
		}
		uid, err1 := parseID(f[2])
		gid, err2 := parseID(f[3])
		if err1 != nil || err2 != nil {
			continue
		}
		u := User{Name: f[0], UID: uid, GID: gid}
		if len(f) > 5 {
			u.Home = f[5]
		}
		out = append(out, u)
	}
	return out
}

// ParseGroup parses an /etc/group file, skipping malformed lines.
func ParseGroup(r io.Reader) []Group {
	var out []Group
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) < 3 {
			continue
		}
		gid, err := parseID(f[2])
		if err != nil {
			continue
		}
		g := Group{Name: f[0], GID: gid}
		if len(f) > 3 && f[3] != "" {
			for _, m := range strings.Split(f[3], ",") {
				if m = strings.TrimSpace(m); m != "" {
					g.Members = append(g.Members, m)
				}
			}
		}
		out = append(out, g)
	}
	return out
}

// parseID parses a uid or gid: a decimal in [0, 2^32-2] (2^32-1 is the
// kernel's "no id").
func parseID(s string) (int, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, err
	}
	if n == 1<<32-1 {
		return 0, fmt.Errorf("id %d is reserved", n)
	}
	return int(n), nil
}
