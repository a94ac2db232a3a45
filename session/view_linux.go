//go:build !jailmgr_init

package session

import (
	"errors"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// A session's root is mounted twice on the host. The jail's own root, with
// the setuid and device semantics the jail needs (sudo, device nodes of a
// root without a dev mount), sits at <dir>/private/root, in a folder only
// root may enter; the session init makes it its / from there. The host's
// view at <dir>/root (State.Root), which the session's owner reaches to
// copy files in and out, is a recursive bind of it with nosuid and nodev on
// every mount: a setuid-root file made inside (by a root-user, or shipped
// in an image) is inert when run from the host, and a device node made
// inside opens nothing there.

// privateRoot is where the jail's own root is mounted in the state folder.
func privateRoot(dir string) string { return filepath.Join(dir, "private", "root") }

// viewAttrs are what the host's view adds to every mount of the root.
const viewAttrs = unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV

// mountView makes view a recursive bind of root with nosuid and nodev set on
// every mount of the tree. The tree is cloned detached, restricted, then
// attached, so that it never appears at view without the restriction; only
// flags are added, so a submount keeps what it had (read-only, noexec).
func mountView(root, view string) error {
	fd, err := unix.OpenTree(unix.AT_FDCWD, root, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
	if errors.Is(err, unix.ENOSYS) {
		return mountViewRemount(root, view)
	}
	if err != nil {
		return &MountError{Op: "clone tree", Source: root, Target: view, Err: err}
	}
	defer unix.Close(fd)
	attr := &unix.MountAttr{Attr_set: viewAttrs}
	err = unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, attr)
	if errors.Is(err, unix.ENOSYS) {
		// open_tree (5.2) without mount_setattr (5.12). The clone goes
		// with its descriptor.
		return mountViewRemount(root, view)
	}
	if err != nil {
		return &MountError{Op: "set nosuid,nodev", Source: root, Target: view, Flags: viewAttrs, Err: err}
	}
	if err := unix.MoveMount(fd, "", unix.AT_FDCWD, view, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return &MountError{Op: "attach", Source: root, Target: view, Err: err}
	}
	return nil
}

// mountViewRemount is mountView for kernels before 5.12: a recursive bind,
// then a remount of each of its mounts with the flags it has plus nosuid
// and nodev (a bind takes flags only from a remount, which sets them all:
// the ones a mount has are read back first, or they would be cleared).
// For a moment the view has setuid semantics; Begin opens the state folder
// to the owner only after this returns.
func mountViewRemount(root, view string) error {
	if err := unix.Mount(root, view, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return &MountError{Op: "bind", Source: root, Target: view, Flags: unix.MS_BIND | unix.MS_REC, Err: err}
	}
	mounts, err := mountsBelow(view)
	if err != nil {
		return err
	}
	for _, m := range mounts {
		var st unix.Statfs_t
		if err := unix.Statfs(m, &st); err != nil {
			return &MountError{Op: "read flags", Target: m, Err: err}
		}
		flags := uintptr(unix.MS_BIND|unix.MS_REMOUNT|unix.MS_NOSUID|unix.MS_NODEV) | mountFlags(int64(st.Flags))
		if err := unix.Mount("", m, "", flags, ""); err != nil {
			return &MountError{Op: "remount nosuid,nodev", Target: m, Flags: flags, Err: err}
		}
	}
	return nil
}

// mountFlags turns statfs's ST_* flags into the MS_* flags a bind remount
// must repeat to keep them (the values differ for relatime).
func mountFlags(st int64) uintptr {
	var out uintptr
	for _, f := range []struct {
		st int64
		ms uintptr
	}{
		{unix.ST_RDONLY, unix.MS_RDONLY},
		{unix.ST_NOSUID, unix.MS_NOSUID},
		{unix.ST_NODEV, unix.MS_NODEV},
		{unix.ST_NOEXEC, unix.MS_NOEXEC},
		{unix.ST_SYNCHRONOUS, unix.MS_SYNCHRONOUS},
		{unix.ST_MANDLOCK, unix.MS_MANDLOCK},
		{unix.ST_NOATIME, unix.MS_NOATIME},
		{unix.ST_NODIRATIME, unix.MS_NODIRATIME},
		{unix.ST_RELATIME, unix.MS_RELATIME},
	} {
		if st&f.st != 0 {
			out |= f.ms
		}
	}
	return out
}
