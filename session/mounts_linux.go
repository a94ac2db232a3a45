package session

import (
	"archive/tar"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"jailmgr/store/tree"
)

// setupMounts builds the jail's filesystem view inside its root, before
// pivot_root: /proc, a read-only /sys, a minimal /dev, home, /tmp, binds,
// and the files and user entries copied in from the host.
func setupMounts(c *initConfig) error {
	root, err := tree.OpenRoot(c.Root)
	if err != nil {
		return err
	}
	defer root.Close()
	has := func(m string) bool { return slices.Contains(c.Mounts, m) }
	if has("proc") {
		if err := mountAt(root, "proc", "proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
			return err
		}
		if err := guardProc(root.Path); err != nil {
			return err
		}
	}
	if has("sys") {
		if err := mountAt(root, "sys", "sysfs", "sysfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
			return err
		}
	}
	if has("dev") {
		if err := setupDev(root); err != nil {
			return err
		}
	}
	if has("tmp") {
		if err := mountAt(root, "tmp", "tmpfs", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=1777"); err != nil {
			return err
		}
	}
	if has("home") && c.User.Home != "" && c.User.Home != "/" && c.User.UID != 0 {
		if st, err := os.Stat(c.User.Home); err == nil && st.IsDir() {
			if err := bindAt(root, c.User.Home, c.User.Home, false); err != nil {
				return err
			}
		}
	}
	for _, b := range c.Binds {
		if err := bindAt(root, b.Source, b.Target, b.ReadOnly); err != nil {
			return err
		}
	}
	for _, f := range c.Files {
		if err := root.WriteFile(strings.TrimPrefix(f.Path, "/"), f.Data, 0o644); err != nil {
			return fmt.Errorf("copy %s into the jail: %w", f.Path, err)
		}
	}
	return addUser(root, &c.User)
}

// mountAt mounts source on rel beneath the root, creating rel as a folder.
func mountAt(root *tree.Root, rel, source, fstype string, flags uintptr, data string) error {
	if err := root.MkdirAll(rel); err != nil {
		return &MountError{Op: "mkdir", Source: source, Target: rel, FSType: fstype, Err: err}
	}
	fd, err := root.OpenPath(rel)
	if err != nil {
		return &MountError{Op: "open target", Source: source, Target: rel, FSType: fstype, Err: err}
	}
	defer unix.Close(fd)
	if err := unix.Mount(source, fmt.Sprintf("/proc/self/fd/%d", fd), fstype, flags, data); err != nil {
		return &MountError{Op: "mount", Source: source, Target: rel, FSType: fstype, Flags: flags, Err: err}
	}
	return nil
}

// bindAt binds a host path onto target beneath the root, read-only if asked.
func bindAt(root *tree.Root, source, target string, ro bool) error {
	rel := strings.TrimPrefix(filepath.Clean(target), "/")
	st, err := os.Stat(source)
	if err != nil {
		return fmt.Errorf("bind %s: %w", source, err)
	}
	if st.IsDir() {
		err = root.MkdirAll(rel)
	} else if !root.Exists(rel) {
		err = root.WriteFile(rel, nil, 0o644)
	}
	if err != nil {
		return &MountError{Op: "create target", Source: source, Target: target, Err: err}
	}
	fd, err := root.OpenPath(rel)
	if err != nil {
		return &MountError{Op: "open target", Source: source, Target: target, Err: err}
	}
	defer unix.Close(fd)
	path := fmt.Sprintf("/proc/self/fd/%d", fd)
	if err := unix.Mount(source, path, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return &MountError{Op: "bind", Source: source, Target: target, Flags: unix.MS_BIND | unix.MS_REC, Err: err}
	}
	if ro {
		// A bind mount takes its flags only from a remount; the fd still
		// names the target's old (covered) inode, so go by the path, now
		// a mount point within the root we control.
		full := filepath.Join(root.Path, rel)
		flags := uintptr(unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV)
		if err := unix.Mount("", full, "", flags, ""); err != nil {
			return &MountError{Op: "remount read-only", Source: source, Target: target, Flags: flags, Err: err}
		}
	}
	return nil
}

// setupDev makes a minimal /dev: a tmpfs with the standard nodes, a new
// devpts instance (so the jail's ptys are its own) and /dev/shm.
func setupDev(root *tree.Root) error {
	if err := mountAt(root, "dev", "tmpfs", "tmpfs", unix.MS_NOSUID|unix.MS_NOEXEC, "mode=755,size=65536k"); err != nil {
		return err
	}
	// The fresh tmpfs is its own mount, which a lookup from the root may
	// not cross; it is opened as a root of its own. Nothing runs in the
	// jail yet, and mountAt refused a symlink at dev, so the path is ours.
	dev, err := tree.OpenRoot(filepath.Join(root.Path, "dev"))
	if err != nil {
		return err
	}
	defer dev.Close()
	nodes := []struct {
		name         string
		major, minor int64
	}{{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}}
	for _, n := range nodes {
		h := &tar.Header{Typeflag: tar.TypeChar, Name: n.name, Mode: 0o666, Devmajor: n.major, Devminor: n.minor}
		if err := dev.WriteEntry(h, nil, tree.Options{}); err != nil {
			return fmt.Errorf("create /dev/%s: %w", n.name, err)
		}
	}
	if err := mountAt(dev, "pts", "devpts", "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5"); err != nil {
		return err
	}
	if err := mountAt(dev, "shm", "shm", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=1777,size=65536k"); err != nil {
		return err
	}
	for name, target := range map[string]string{"ptmx": "pts/ptmx", "fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"} {
		if err := dev.Symlink(target, name); err != nil {
			return fmt.Errorf("create /%s: %w", name, err)
		}
	}
	return nil
}

// Parts of /proc that reach beyond the jail: the kernel's settings and
// sysrq are made read-only, and what leaks host memory or keys is covered,
// as runc does for containers.
var (
	procReadOnly = []string{"bus", "fs", "irq", "sys", "sysrq-trigger"}
	procMasked   = []string{"acpi", "kcore", "keys", "latency_stats", "timer_list", "timer_stats", "sched_debug", "scsi"}
)

func guardProc(rootPath string) error {
	proc := filepath.Join(rootPath, "proc")
	for _, p := range procReadOnly {
		target := filepath.Join(proc, p)
		if _, err := os.Lstat(target); err != nil {
			continue
		}
		if err := unix.Mount(target, target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return &MountError{Op: "bind", Source: target, Target: target, Err: err}
		}
		flags := uintptr(unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
		if err := unix.Mount("", target, "", flags, ""); err != nil {
			return &MountError{Op: "remount read-only", Target: target, Flags: flags, Err: err}
		}
	}
	for _, p := range procMasked {
		target := filepath.Join(proc, p)
		st, err := os.Lstat(target)
		if err != nil {
			continue
		}
		if st.IsDir() {
			err = unix.Mount("tmpfs", target, "tmpfs", unix.MS_RDONLY, "size=0")
		} else {
			err = unix.Mount("/dev/null", target, "", unix.MS_BIND, "")
		}
		if err != nil {
			return &MountError{Op: "mask", Target: target, Err: err}
		}
	}
	return nil
}

// addUser makes sure the session's user and groups exist in the jail's
// /etc/passwd and /etc/group, so that tools that look the user up work.
func addUser(root *tree.Root, u *User) error {
	if u.UID == 0 || u.Passwd == "" {
		return nil
	}
	if err := appendMissing(root, "etc/passwd", []string{u.Passwd}); err != nil {
		return err
	}
	return appendMissing(root, "etc/group", u.Group)
}

// appendMissing adds the lines whose first field (the name) the file lacks.
func appendMissing(root *tree.Root, rel string, lines []string) error {
	data, err := root.ReadFile(rel)
	if err != nil && !os.IsNotExist(err) && !strings.Contains(err.Error(), "no such file") {
		return fmt.Errorf("read /%s in the jail: %w", rel, err)
	}
	have := map[string]bool{}
	for _, l := range strings.Split(string(data), "\n") {
		if name, _, ok := strings.Cut(l, ":"); ok {
			have[name] = true
		}
	}
	out := string(data)
	changed := false
	for _, l := range lines {
		name, _, _ := strings.Cut(l, ":")
		if name == "" || have[name] {
			continue
		}
		if out != "" && !strings.HasSuffix(out, "\n") {
			out += "\n"
		}
		out += l + "\n"
		changed = true
	}
	if !changed {
		return nil
	}
	return root.WriteFile(rel, []byte(out), 0o644)
}

// loopbackUp brings up lo in a new network namespace, so that a jail with
// network = none still reaches its own services.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("bring up loopback: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("bring up loopback: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring up loopback: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring up loopback: %w", err)
	}
	return nil
}
