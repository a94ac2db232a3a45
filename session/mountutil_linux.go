package session

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"

	"golang.org/x/sys/unix"
)

// lookPathIn finds a command as a shell in the root would, through the
// PATH folders resolved inside the root (RESOLVE_IN_ROOT, so an absolute
// symlink such as /usr/bin/awk -> /etc/alternatives/awk stays in it). A
// name with a slash is the kernel's to resolve after the chroot.
func lookPathIn(rootfd int, name, path string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	if path == "" {
		path = defaultPath
	}
	how := &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT}
	for _, d := range strings.Split(path, ":") {
		if !strings.HasPrefix(d, "/") {
			continue
		}
		p := strings.TrimSuffix(d, "/") + "/" + name
		fd, err := unix.Openat2(rootfd, p, how)
		if err != nil {
			continue
		}
		var st unix.Stat_t
		err = unix.Fstat(fd, &st)
		unix.Close(fd)
		if err == nil && st.Mode&unix.S_IFMT == unix.S_IFREG && st.Mode&0o111 != 0 {
			return p, nil
		}
	}
	return "", exec.ErrNotFound
}

// MountError carries what a failed mount was asked to do.
type MountError struct {
	Op, Source, Target, FSType string
	Flags                      uintptr
	Err                        error
}

func (e *MountError) Error() string {
	return fmt.Sprintf("mount %s %s on %s (type %q, flags %#x): %v", e.Op, e.Source, e.Target, e.FSType, e.Flags, e.Err)
}
func (e *MountError) Unwrap() error { return e.Err }

// mountIn mounts source on the directory rel beneath the root. The target is
// opened with RESOLVE_BENEATH and mounted through its /proc/self/fd path, so a
// symlink planted in the root (say proc -> /etc) cannot redirect the mount
// onto the host.
func mountIn(rootfd int, rel, source, fstype string, flags uintptr) error {
	how := &unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS}
	fd, err := unix.Openat2(rootfd, rel, how)
	if errors.Is(err, unix.ENOENT) {
		if err := unix.Mkdirat(rootfd, rel, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
			return &MountError{Op: "mkdir", Source: source, Target: rel, Err: err}
		}
		fd, err = unix.Openat2(rootfd, rel, how)
	}
	if err != nil {
		return &MountError{Op: "open target", Source: source, Target: rel, Err: err}
	}
	defer unix.Close(fd)
	target := fmt.Sprintf("/proc/self/fd/%d", fd)
	if err := unix.Mount(source, target, fstype, flags, ""); err != nil {
		return &MountError{Op: "mount", Source: source, Target: rel, FSType: fstype, Flags: flags, Err: err}
	}
	return nil
}
