package build

import (
	"io/fs"
	"syscall"
)

const syscallNoFollow = syscall.O_NOFOLLOW

func ownerOf(fi fs.FileInfo) (int, int) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid), int(st.Gid)
	}
	return 0, 0
}
