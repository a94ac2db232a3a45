package bootstrap

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"jailmgr/store/tree"
)

// validUntilConf is where an image built with IgnoreValidUntil tells its
// own apt to accept Release files past their Valid-Until date, as the
// bootstrap did: a snapshot archive's are all expired.
const validUntilConf = "etc/apt/apt.conf.d/99jailmgr-ignore-valid-until"

// prepareEtc writes the files a new root needs before its maintainer scripts
// run: the apt sources it was built from (every pocket, each on its mirror,
// so that apt inside brings the fixes published later), the host's
// resolv.conf (so apt works in a plain chroot), fstab and localtime.
func prepareEtc(root *tree.Root, o *Options, p *Plan) error {
	var sources strings.Builder
	for _, pk := range p.pockets(o.Suite) {
		fmt.Fprintf(&sources, "deb %s %s %s\n", pk.Mirror, pk.Suite, strings.Join(p.Components, " "))
	}
	if err := root.WriteFile("etc/apt/sources.list", []byte(sources.String()), 0o644); err != nil {
		return fmt.Errorf("write apt sources: %w", err)
	}
	if o.IgnoreValidUntil {
		conf := "// Written by jailmgr bootstrap --ignore-valid-until: the archive this\n// image was built from has expired Release files.\nAcquire::Check-Valid-Until \"false\";\n"
		if err := root.MkdirAll("etc/apt/apt.conf.d"); err != nil {
			return fmt.Errorf("write %s: %w", validUntilConf, err)
		}
		if err := root.WriteFile(validUntilConf, []byte(conf), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", validUntilConf, err)
		}
	}
	if data, err := os.ReadFile("/etc/resolv.conf"); err == nil {
		if err := root.WriteFile("etc/resolv.conf", data, 0o644); err != nil {
			return fmt.Errorf("write resolv.conf: %w", err)
		}
	}
	if !root.Exists("etc/fstab") {
		if err := root.WriteFile("etc/fstab", []byte("# UNCONFIGURED FSTAB FOR BASE SYSTEM\n"), 0o644); err != nil {
			return fmt.Errorf("write fstab: %w", err)
		}
	}
	if !root.Exists("etc/localtime") {
		if err := root.Symlink("/usr/share/zoneinfo/UTC", "etc/localtime"); err != nil {
			return fmt.Errorf("write localtime: %w", err)
		}
	}
	if !p.MergedUsr && p.Suite.UnmergedFlag != "" {
		if err := root.WriteFile(p.Suite.UnmergedFlag, []byte("this system will not be supported in the future\n"), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", p.Suite.UnmergedFlag, err)
		}
	}
	return nil
}

// cleanup removes what must not be baked into an image: downloaded lists
// and caches, logs of the build, and the machine's identity.
func cleanup(root *tree.Root) error {
	for _, d := range []string{"var/lib/apt/lists", "var/cache/apt/archives", "var/log/apt", "tmp", "var/tmp"} {
		if err := root.RemoveContents(d); err != nil {
			return fmt.Errorf("clean up image: %w", err)
		}
	}
	for _, d := range []string{"var/lib/apt/lists/partial", "var/cache/apt/archives/partial"} {
		if err := root.MkdirAll(d); err != nil {
			return fmt.Errorf("clean up image: %w", err)
		}
	}
	for _, f := range []string{"var/cache/apt/pkgcache.bin", "var/cache/apt/srcpkgcache.bin", "var/log/dpkg.log",
		"var/log/alternatives.log", "var/log/bootstrap.log", "var/lib/dbus/machine-id", "var/lib/dpkg/available-old",
		"var/lib/dpkg/status-old", "var/cache/debconf/config.dat-old", "var/cache/debconf/templates.dat-old",
		// ldconfig's aux-cache records inode numbers and change times: no two
		// builds agree on it, and ldconfig rebuilds it when it is missing.
		"var/cache/ldconfig/aux-cache"} {
		if err := root.Remove(f); err != nil {
			return fmt.Errorf("clean up image: %w", err)
		}
	}
	// An empty machine-id tells systemd to make a fresh one at first boot;
	// a copied one would make every jail the same machine.
	if id, err := root.ReadFile("etc/machine-id"); err == nil && len(id) > 0 {
		if err := root.WriteFile("etc/machine-id", nil, 0o444); err != nil {
			return fmt.Errorf("clean up image: %w", err)
		}
	}
	return nil
}

// clampTimes sets every mtime later than SOURCE_DATE_EPOCH to it, so that
// two builds of the same archive state give the same tree.
func clampTimes(rootDir string) error {
	v := os.Getenv("SOURCE_DATE_EPOCH")
	if v == "" {
		return nil
	}
	secs, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: SOURCE_DATE_EPOCH=%q is not a number of seconds", ErrUsage, v)
	}
	epoch := time.Unix(secs, 0)
	ts := []unix.Timespec{unix.NsecToTimespec(epoch.UnixNano()), unix.NsecToTimespec(epoch.UnixNano())}
	var dirs []string
	err = filepath.WalkDir(rootDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, p) // after their content, which changes them
			return nil
		}
		if info.ModTime().After(epoch) {
			return unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("clamp timestamps: %w", err)
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, dirs[i], ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("clamp timestamps: %w", err)
		}
	}
	return nil
}
