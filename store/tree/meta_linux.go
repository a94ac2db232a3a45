package tree

import (
	"path"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// SetXattr sets the extended attribute name of rel beneath the root. A
// symlink at rel is refused, not followed.
func (r *Root) SetXattr(rel, name string, value []byte) error {
	clean, err := CleanName(rel)
	if err != nil {
		return &PathError{"set xattr on", rel, err}
	}
	fd, err := r.openNoFollow(clean)
	if err != nil {
		return &PathError{"set xattr on", clean, err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &PathError{"set xattr on", clean, err}
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return &PathError{"set xattr on", clean, ErrUnsupported}
	}
	// An O_PATH descriptor does not take fsetxattr, but its /proc/self/fd
	// link leads to the very inode it holds, whatever is renamed meanwhile;
	// opening the file itself instead would open devices and fifos.
	if err := unix.Setxattr("/proc/self/fd/"+strconv.Itoa(fd), name, value, 0); err != nil {
		return &PathError{"set xattr " + name + " on", clean, err}
	}
	return nil
}

// Chtimes sets the access and modification times of rel beneath the root
// to mtime, without following a symlink at rel. Archive writers call it
// for directories once everything below them is written: each entry
// written into a directory moves its time.
func (r *Root) Chtimes(rel string, mtime time.Time) error {
	clean, err := CleanName(rel)
	if err != nil {
		return &PathError{"set times of", rel, err}
	}
	dir, base := path.Split(clean)
	if base == "" {
		base = "."
	}
	pfd, err := r.openDir(path.Clean(dir), false)
	if err != nil {
		return &PathError{"set times of", clean, err}
	}
	defer unix.Close(pfd)
	ts := []unix.Timespec{unix.NsecToTimespec(mtime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
	if err := unix.UtimesNanoAt(pfd, base, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &PathError{"set times of", clean, err}
	}
	return nil
}

// openNoFollow opens rel (clean) beneath the root as an O_PATH descriptor:
// its folders are resolved inside the root, its last component is not
// followed.
func (r *Root) openNoFollow(rel string) (int, error) {
	dir, base := path.Split(rel)
	if base == "" {
		base = "."
	}
	pfd, err := r.openDir(path.Clean(dir), false)
	if err != nil {
		return -1, err
	}
	defer unix.Close(pfd)
	return unix.Openat(pfd, base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
}
