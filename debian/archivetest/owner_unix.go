//go:build unix

package archivetest

import (
	"io/fs"
	"syscall"
)

// fileOwner returns the uid and gid of fi, 0 when the platform hides them.
func fileOwner(fi fs.FileInfo) (uid, gid int) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid), int(st.Gid)
	}
	return 0, 0
}
