package conf

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// How a schroot chroot becomes a jail. schroot's setup scripts mount what
// a profile's fstab lists, copy its copyfiles and its NSS databases into
// the chroot; jailmgr does the same things its own way:
//
//   - /proc, /sys, /dev (and /dev/pts, /dev/shm) and /tmp in an fstab are
//     jailmgr's own fresh mounts (a new /proc, a read-only /sys, a minimal
//     /dev with its own devpts, a private /tmp), never the host's; every
//     jail gets /proc and /dev, which commands need. Other bind lines are
//     binds, read-only with "ro". Anything else is skipped with a warning.
//   - copyfiles are host files copied in at the start of each session.
//   - nssdatabases: passwd and group give the session's user its entries
//     (every jailmgr session has them); shadow and gshadow are never
//     copied, password hashes stay on the host; other databases (hosts,
//     services, networks, protocols...) are copied from the host's /etc.
//
// The standard profiles (default, minimal, buildd, sbuild, desktop) are
// built in, as schroot 1.6.13 installs them, so that chroots that name
// them work with schroot itself not installed; files in the schroot
// configuration folder take precedence.

// builtinProfiles are the setup files of Debian's schroot 1.6.13 package
// (/etc/schroot/PROFILE/{fstab,copyfiles,nssdatabases}), comments dropped.
var builtinProfiles = map[string]string{
	"default/fstab": `/proc           /proc           none    rw,bind         0       0
/sys            /sys            none    rw,bind         0       0
/dev            /dev            none    rw,bind         0       0
/dev/pts        /dev/pts        none    rw,bind         0       0
/home           /home           none    rw,bind         0       0
/tmp            /tmp            none    rw,bind         0       0
`,
	"default/copyfiles":    "/etc/resolv.conf\n",
	"default/nssdatabases": "passwd\nshadow\ngroup\ngshadow\nservices\nprotocols\nnetworks\nhosts\n",
	"minimal/fstab": `/proc           /proc           none    rw,bind         0       0
/sys            /sys            none    rw,bind         0       0
`,
	"minimal/copyfiles":    "/etc/resolv.conf\n",
	"minimal/nssdatabases": "passwd\nshadow\ngroup\ngshadow\n",
	"buildd/fstab": `/proc           /proc           none    rw,bind         0       0
/sys            /sys            none    rw,bind         0       0
/dev/pts        /dev/pts        none    rw,bind         0       0
tmpfs           /dev/shm        tmpfs   defaults        0       0
/var/lib/sbuild/build  /build   none    rw,bind         0       0
`,
	"buildd/copyfiles":    "/etc/resolv.conf\n/etc/hosts\n/etc/resolv.conf\n/etc/networks\n",
	"buildd/nssdatabases": "passwd\nshadow\ngroup\ngshadow\npasswd\nshadow\ngroup\ngshadow\n",
	"sbuild/fstab": `/proc           /proc           none    rw,bind         0       0
/sys            /sys            none    rw,bind         0       0
/dev/pts        /dev/pts        none    rw,bind         0       0
tmpfs           /dev/shm        tmpfs   defaults        0       0
/var/lib/sbuild/build  /build   none    rw,bind         0       0
`,
	"sbuild/copyfiles":    "/etc/resolv.conf\n",
	"sbuild/nssdatabases": "passwd\nshadow\ngroup\ngshadow\n",
	"desktop/fstab": `/proc           /proc           none    rw,bind         0       0
/sys            /sys            none    rw,bind         0       0
/dev            /dev            none    rw,bind         0       0
/dev/pts        /dev/pts        none    rw,bind         0       0
/home           /home           none    rw,bind         0       0
/tmp            /tmp            none    rw,bind         0       0
/var/lib/dbus    /var/lib/dbus  none    rw,bind         0       0
`,
	"desktop/copyfiles":    "/etc/resolv.conf\n",
	"desktop/nssdatabases": "passwd\nshadow\ngroup\ngshadow\nservices\nprotocols\nnetworks\nhosts\n",
}

// setupFile reads a setup file named by a chroot: relative names are in
// the configuration folder, where a missing standard profile falls back to
// the built-in copy. It returns the path it read (for messages).
func (c *SchrootConfig) setupFile(name string) (string, string, error) {
	path := name
	if !filepath.IsAbs(name) {
		path = filepath.Join(c.Dir, name)
	}
	data, err := os.ReadFile(path)
	if err == nil {
		return path, string(data), nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		if text, ok := builtinProfiles[filepath.Clean(name)]; ok && !filepath.IsAbs(name) {
			return path + " (built in)", text, nil
		}
	}
	return path, "", err
}

// setupFiles finds the fstab, copyfiles and nssdatabases files a chroot
// uses: its setup.* keys, or the assignments of its script-config.
func (c *SchrootConfig) setupFiles(ch *Chroot) (map[string]string, error) {
	files := map[string]string{}
	if ch.ScriptConfig == "" {
		for _, k := range []string{"fstab", "copyfiles", "nssdatabases"} {
			if v := ch.UserData["setup."+k]; v != "" {
				files[k] = v
			}
		}
		return files, nil
	}
	// A script-config is a shell fragment; the assignments schroot's own
	// script-defaults makes are read, anything cleverer is not run.
	path, text, err := c.setupFile(ch.ScriptConfig)
	if err != nil {
		return nil, &SchrootError{File: ch.File, Line: ch.Line, Group: ch.Name, Key: "script-config", What: fmt.Sprintf("read %s: %v", path, err)}
	}
	vars := map[string]string{"FSTAB": "fstab", "COPYFILES": "copyfiles", "NSSDATABASES": "nssdatabases"}
	for _, l := range lines([]byte(text)) {
		k, v, ok := strings.Cut(strings.TrimSpace(l), "=")
		if name, known := vars[k]; ok && known {
			files[name] = strings.Trim(v, `"'`)
		}
	}
	return files, nil
}

// Jail is the jail a chroot (or its source chroot) runs as, with warnings
// for what of its setup jailmgr does not do.
func (c *SchrootConfig) Jail(ch *Chroot) (*Jail, []*SchrootError, error) {
	j := DefaultJail("")
	j.Name, j.Image, j.Description, j.File, j.Line = ch.Name, "", ch.Description, ch.File, ch.Line
	j.Users, j.Groups, j.RootUsers, j.RootGroups = ch.Users, ch.Groups, ch.RootUsers, ch.RootGroups
	if !ch.Source {
		j.Aliases = ch.Aliases
	}
	j.Mounts = []string{"proc", "dev"}
	j.Shell = ch.Shell
	// schroot shares the host's host name; builds that look it up in the
	// copied /etc/hosts find it there.
	if h, err := os.Hostname(); err == nil && validHostname(h) {
		j.Hostname = h
	}
	if ch.PreserveEnvironment {
		j.Environment = "preserve"
	}
	if ch.Personality != "undefined" && ch.Personality != "" {
		j.Personality = ch.Personality
	}
	switch ch.Type {
	case "file":
		j.Tarball, j.TarballRoot, j.Type, j.Repack = ch.Tarball, ch.Location, "ephemeral", ch.FileRepack
		if ch.FileRepack {
			j.Type = "persistent"
		}
	default:
		j.Directory, j.Type = ch.Directory, "persistent"
		if ch.UnionConfigured() {
			j.Type = "ephemeral"
			if ch.UnionOverlayDirectory != DefaultUnionOverlayDirectory {
				j.OverlayDir = ch.UnionOverlayDirectory
			}
		}
	}
	if !ch.RunSetupScripts() {
		return j, nil, nil // plain chroots run no setup scripts
	}
	files, err := c.setupFiles(ch)
	if err != nil {
		return nil, nil, err
	}
	var warns []*SchrootError
	keyErr := func(key, format string, args ...any) *SchrootError {
		return &SchrootError{File: ch.File, Line: ch.Line, Group: ch.Name, Key: key, What: fmt.Sprintf(format, args...)}
	}
	read := func(kind string) (string, string, error) {
		name := files[kind]
		if name == "" {
			return "", "", nil
		}
		path, text, err := c.setupFile(name)
		if err != nil {
			return "", "", keyErr("setup."+kind, "%s file ‘%s’ cannot be read: %v", kind, path, err)
		}
		return path, text, nil
	}
	path, fstab, err := read("fstab")
	if err != nil {
		return nil, nil, err
	}
	w := applyFstab(j, path, fstab)
	for _, m := range w {
		warns = append(warns, &SchrootError{File: ch.File, Line: ch.Line, Group: ch.Name, Key: "setup.fstab", What: m})
	}
	_, copyfiles, err := read("copyfiles")
	if err != nil {
		return nil, nil, err
	}
	for _, f := range setupLines(copyfiles) {
		if !filepath.IsAbs(f) {
			warns = append(warns, keyErr("setup.copyfiles", "‘%s’ is not an absolute path; not copied", f))
			continue
		}
		if !slices.Contains(j.CopyFiles, f) {
			j.CopyFiles = append(j.CopyFiles, f)
		}
	}
	_, nss, err := read("nssdatabases")
	if err != nil {
		return nil, nil, err
	}
	for _, db := range setupLines(nss) {
		switch db {
		case "passwd", "group", "shadow", "gshadow":
			// The user's passwd and group entries are copied into every
			// session; password hashes never are.
		default:
			if strings.ContainsAny(db, "/.") {
				warns = append(warns, keyErr("setup.nssdatabases", "‘%s’ is not a database name; not copied", db))
				continue
			}
			if f := "/etc/" + db; !slices.Contains(j.CopyFiles, f) {
				j.CopyFiles = append(j.CopyFiles, f)
			}
		}
	}
	return j, warns, nil
}

// setupLines are the non-empty, non-comment lines of a setup file.
func setupLines(text string) []string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(l)
		if l != "" && l[0] != '#' {
			out = append(out, l)
		}
	}
	return out
}

// applyFstab maps an fstab's lines to the jail's mounts and binds, and
// returns a message for each line it skips.
func applyFstab(j *Jail, path, text string) []string {
	var skipped []string
	addMount := func(m string) {
		if !slices.Contains(j.Mounts, m) {
			j.Mounts = append(j.Mounts, m)
		}
	}
	for _, l := range setupLines(text) {
		f := strings.Fields(l)
		if len(f) < 3 {
			skipped = append(skipped, fmt.Sprintf("%s: line “%s” is not SOURCE TARGET TYPE [OPTIONS]; skipped", path, l))
			continue
		}
		src, target, fstype := f[0], filepath.Clean(f[1]), f[2]
		opts := []string{}
		if len(f) > 3 {
			opts = strings.Split(f[3], ",")
		}
		bind := slices.Contains(opts, "bind") || slices.Contains(opts, "rbind")
		switch target {
		case "/proc":
			continue // always mounted, fresh
		case "/sys":
			addMount("sys")
			continue
		case "/dev", "/dev/pts", "/dev/shm":
			continue // jailmgr's minimal /dev, with its own devpts and shm
		case "/tmp":
			addMount("tmp")
			continue
		}
		if !bind {
			skipped = append(skipped, fmt.Sprintf("%s: mount of %s on %s (type %s) is not supported by jailmgr; skipped", path, src, target, fstype))
			continue
		}
		if !filepath.IsAbs(src) || !filepath.IsAbs(target) || target == "/" {
			skipped = append(skipped, fmt.Sprintf("%s: bind of %s on %s needs absolute paths below /; skipped", path, src, target))
			continue
		}
		j.Binds = append(j.Binds, Bind{Source: filepath.Clean(src), Target: target, ReadOnly: slices.Contains(opts, "ro")})
	}
	return skipped
}

// ChrootOfJail is how one of jailmgr's own jails looks to schroot clients:
// a directory chroot (over the image's root for image jails, root being
// its path when known), a union when its sessions are ephemeral, without
// a source chroot.
func ChrootOfJail(j *Jail, root string) *Chroot {
	c := &Chroot{Name: j.Name, Type: "directory", Description: j.Description, Directory: j.Directory,
		Users: j.Users, Groups: j.Groups, RootUsers: j.RootUsers, RootGroups: j.RootGroups, Aliases: j.Aliases,
		PreserveEnvironment: j.Environment == "preserve", Shell: j.Shell, EnvironmentFilter: DefaultEnvironmentFilter,
		Verbosity: "normal", Personality: "undefined", UserData: map[string]string{}, UnionType: "none",
		UnionOverlayDirectory: DefaultUnionOverlayDirectory, UnionUnderlayDirectory: DefaultUnionUnderlayDirectory,
		Jail: j, File: j.File, Line: j.Line}
	if j.Personality != "" {
		c.Personality = j.Personality
	}
	if j.Image != "" {
		c.Directory = root
	}
	if j.Type == "ephemeral" {
		c.UnionType = "overlay"
		if j.OverlayDir != "" {
			c.UnionOverlayDirectory = j.OverlayDir
		}
	}
	return c
}
