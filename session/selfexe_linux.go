package session

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// The exec helper is this program run again inside the jail, as root with
// every capability until it has dropped what the command must not have.
// Run from its file on the host, it would hand a root of the jail the
// host's jailmgr: /proc/PID/exe of the helper is that file, a descriptor
// taken there in the moment before the helper turns non-dumpable is a
// handle on it, and once nothing runs the file any more the handle opens
// it for writing (CVE-2019-5736, against runc). So the init runs the
// helper from a read-only bind mount of its own file that has no place in
// any mount tree: a write through it fails with EROFS whatever the
// opener's capabilities, and a mount that is nowhere cannot be remounted
// writable (a remount goes by path). runc's exeseal reaches the same end
// with a lower-only overlay, or a sealed memfd copy of the binary for each
// container; a bind costs no copy, and is sealed before any process of the
// jail exists.

// sealAttrs are what the sealed mount is: read-only, and without setuid or
// device semantics (the helper starts as root already).
const sealAttrs = unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV

// sealFlags are sealAttrs as flags of a remount.
const sealFlags = unix.MS_REMOUNT | unix.MS_BIND | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV

// sealExe returns an O_PATH descriptor of this program's own file through
// a read-only bind mount of that file alone, attached nowhere. The file is
// reached by its path: /proc/self/exe names it on a mount of the namespace
// the init was started in, not of this copy of it, and a mount of another
// namespace can be neither cloned nor bound (EINVAL). What is at the path
// must be the file this process runs; a path whose file was replaced in
// the meantime (an upgrade, or a user's hard link to a setuid jailmgr with
// a program of theirs put in its place) is refused. scratch is for
// sealFile.
func sealExe(scratch string) (*os.File, error) {
	var want, got unix.Stat_t
	if err := unix.Stat("/proc/self/exe", &want); err != nil {
		return nil, fmt.Errorf("seal own executable: %w", err)
	}
	path, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return nil, fmt.Errorf("seal own executable: %w", err)
	}
	f, err := sealFile(path, scratch)
	if err != nil {
		return nil, err
	}
	if err := unix.Fstat(int(f.Fd()), &got); err != nil {
		f.Close()
		return nil, fmt.Errorf("seal %s: %w", path, err)
	}
	if got.Dev != want.Dev || got.Ino != want.Ino {
		f.Close()
		return nil, fmt.Errorf("seal %s: %w", path, errExeReplaced)
	}
	return f, nil
}

// errExeReplaced is sealExe's answer when the init's path leads to another
// file than the one it runs.
var errExeReplaced = errors.New("session: the program at this path is not the one running (replaced since it started)")

// sealFile returns an O_PATH descriptor of the file at path through a
// read-only bind mount of that file alone, attached nowhere. scratch is a
// folder nobody but root may write: on kernels before 5.12, which cannot
// change a detached mount, the bind is made on a file there, made
// read-only, opened and detached.
func sealFile(path, scratch string) (*os.File, error) {
	fd, err := unix.OpenTree(unix.AT_FDCWD, path, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if errors.Is(err, unix.ENOSYS) {
		return sealFileAt(path, scratch)
	}
	if err != nil {
		return nil, &MountError{Op: "clone", Source: path, Target: "(detached)", Err: err}
	}
	err = unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_set: sealAttrs})
	if err != nil {
		// The clone goes with its descriptor.
		unix.Close(fd)
		if errors.Is(err, unix.ENOSYS) {
			// open_tree (5.2) without mount_setattr (5.12).
			return sealFileAt(path, scratch)
		}
		return nil, &MountError{Op: "seal", Source: path, Target: "(detached)", Flags: sealFlags, Err: err}
	}
	return os.NewFile(uintptr(fd), path+" (sealed)"), nil
}

// sealFileAt is sealFile by a bind on a mount point in scratch. The init's
// mount namespace is private, so the bind is never seen on the host; the
// descriptor outlives the detach, and the mount with it.
func sealFileAt(path, scratch string) (_ *os.File, err error) {
	point := filepath.Join(scratch, "sealed-exe")
	// O_EXCL: a file made now, not one that was there (nor a symlink).
	f, err := os.OpenFile(point, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("seal %s: %w", path, err)
	}
	f.Close()
	defer func() {
		if e := os.Remove(point); e != nil && err == nil {
			err = fmt.Errorf("seal %s: %w", path, e)
		}
	}()
	if err := unix.Mount(path, point, "", unix.MS_BIND, ""); err != nil {
		return nil, &MountError{Op: "bind", Source: path, Target: point, Flags: unix.MS_BIND, Err: err}
	}
	fd, err := -1, unix.Mount("", point, "", sealFlags, "")
	if err != nil {
		err = &MountError{Op: "seal", Source: path, Target: point, Flags: sealFlags, Err: err}
	} else if fd, err = unix.Open(point, unix.O_PATH|unix.O_CLOEXEC, 0); err != nil {
		err = fmt.Errorf("seal %s: %w", path, err)
	}
	// Detached, whatever came of the rest: a writable bind left in place
	// would be the file, writable, for whoever could reach it.
	if e := unix.Unmount(point, unix.MNT_DETACH); e != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		return nil, &MountError{Op: "detach", Source: path, Target: point, Err: e}
	}
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), path+" (sealed)"), nil
}

// procIsProcfs tells whether /proc is a procfs mounted there, not a
// folder or symlink of the jail's root: the helper is started by a name
// under /proc/self/fd, and a root of the jail without CAP_SYS_ADMIN can
// neither move a mount point nor mount another, but can plant a
// /proc/self/fd/N of its own where no procfs is.
func procIsProcfs() bool {
	var st unix.Stat_t
	var fs unix.Statfs_t
	if unix.Lstat("/proc", &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return false
	}
	// A folder is on the root's filesystem unless something is mounted on
	// it; never on a procfs.
	return unix.Statfs("/proc", &fs) == nil && fs.Type == unix.PROC_SUPER_MAGIC
}

// errNoProc is the answer to a command that needs the exec helper in a
// jail without its proc mount.
var errNoProc = errors.New("session: commands started through the exec helper (a seccomp profile file, working-folder fallbacks) need the jail's /proc (mounts: proc)")
