package bootstrap

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"jailmgr/bootstrap/ldso"
	"jailmgr/store"
	"jailmgr/store/tree"
)

// FromHostOptions say which host binaries make an image.
type FromHostOptions struct {
	Name string
	// Paths are absolute paths of ELF executables (or shared libraries)
	// on the host.
	Paths []string
	// HostRoot is the host's root folder, "/" by default; tests pass a
	// folder that stands for a host.
	HostRoot string
	Log      io.Writer
}

// The files a jail from host binaries holds besides the binaries, their
// libraries and the loader (README.md lists them for users; keep both in
// step):
//
//   - /etc/passwd and /etc/group with root and nobody/nogroup: tools look
//     the user up (bash's prompt, ls -l), and a session adds its non-root
//     user's entries to them.
//   - the folders /etc, /root (0700, root's home), and the mount points a
//     session covers: /proc, /sys, /dev and /tmp (1777).
//   - /etc/ld.so.cache, a copy of the host's, only when a library was found
//     in a folder that only ld.so.conf names: the loader finds such a
//     library only through the cache.
//
// No /etc/nsswitch.conf: without one glibc looks users and groups up in
// files, and since glibc 2.34 that backend is part of libc itself, so no
// dlopened NSS module is needed. /etc/hosts and /etc/resolv.conf are
// copied in by every session.
var (
	hostJailDirs = []struct {
		path string
		mode int64
	}{{"/etc", 0o755}, {"/root", 0o700}, {"/proc", 0o555}, {"/sys", 0o555}, {"/dev", 0o755}, {"/tmp", 0o1777}}
	hostJailFiles = []struct {
		path string
		data string
	}{
		{"/etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"},
		{"/etc/group", "root:x:0:\nnogroup:x:65534:\n"},
	}
	// sessionMounts are covered by every session's own mounts: a file
	// copied below them would never be seen.
	sessionMounts = []string{"proc", "sys", "dev", "tmp"}
)

// FromHost builds an image of host binaries: each with the loader and the
// libraries it needs (ldso's closure), every file at its own path with the
// symlinks along the way kept as symlinks, plus the few files above; and
// commits it as the next version of o.Name. Nothing is written before the
// closure is complete; on any later error the staging area is removed.
func FromHost(st *store.Store, o FromHostOptions) (*store.Image, error) {
	start := time.Now()
	if o.HostRoot == "" {
		o.HostRoot = "/"
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if !store.ValidName(o.Name) {
		return nil, fmt.Errorf("%w: %q is not an image name (letters, digits, '.', '-' and '_')", ErrUsage, o.Name)
	}
	if len(o.Paths) == 0 {
		return nil, fmt.Errorf("%w: no host binaries to copy", ErrUsage)
	}
	for _, p := range o.Paths {
		if !path.IsAbs(p) {
			return nil, fmt.Errorf("%w: %q is not an absolute path (try $(command -v %s))", ErrUsage, p, p)
		}
	}
	c, err := ldso.Resolve(o.HostRoot, o.Paths...)
	if err != nil {
		return nil, fmt.Errorf("create image %s: %w", o.Name, err)
	}
	p := &hostPlan{root: o.HostRoot, entries: map[string]*hostEntry{}, now: created()}
	needCache := false
	for _, obj := range c.Objects {
		if err := p.addPath(obj.Path); err != nil {
			return nil, fmt.Errorf("create image %s: %w", o.Name, err)
		}
		needCache = needCache || obj.ThroughConf
	}
	if needCache {
		if err := p.addPath("/etc/ld.so.cache"); err != nil {
			return nil, fmt.Errorf("create image %s: %w", o.Name, err)
		}
	}
	if err := p.addExtras(); err != nil {
		return nil, fmt.Errorf("create image %s: %w", o.Name, err)
	}
	pkgs, err := hostPackages(o.HostRoot, p.files)
	if err != nil {
		return nil, fmt.Errorf("create image %s: %w", o.Name, err)
	}
	counts := map[ldso.Kind]int{}
	for _, obj := range c.Objects {
		counts[obj.Kind]++
	}
	loaders := "the loader"
	switch n := counts[ldso.Interpreter]; {
	case n == 0:
		loaders = "no loader (static)"
	case n > 1:
		loaders = fmt.Sprintf("%d loaders", n)
	}
	fmt.Fprintf(o.Log, "from the host: %d binaries, %d libraries and %s (%d paths in all; %d host packages own the files)\n",
		counts[ldso.Argument], counts[ldso.Library], loaders, len(p.entries), len(pkgs))

	stg, err := st.NewStaging()
	if err != nil {
		return nil, err
	}
	committed := false
	defer func() {
		if !committed {
			stg.Abort()
		}
	}()
	if err := p.write(stg.Root()); err != nil {
		return nil, fmt.Errorf("create image %s: %w", o.Name, err)
	}
	if err := clampTimes(stg.Root()); err != nil {
		return nil, err
	}
	size, err := store.DiskUsage(stg.Root())
	if err != nil {
		return nil, err
	}
	arch := c.ABI.Arch()
	if arch == "" {
		arch = strings.ToLower(strings.TrimPrefix(c.ABI.Machine.String(), "EM_"))
	}
	bin := p.entries["/bin"]
	m := &store.Manifest{
		Suite: "host", Distribution: "host", Variant: "from-host", Arch: arch,
		MergedUsr: bin != nil && bin.hdr.Typeflag == tar.TypeSymlink,
		Packages:  pkgs, Created: p.now, Size: size,
	}
	img, err := stg.Commit(o.Name, m)
	if err != nil {
		return nil, err
	}
	committed = true
	fmt.Fprintf(o.Log, "committed %s (%.1f MiB, %s)\n", img.Ref(), float64(size)/(1<<20), since(start))
	return img, nil
}

// hostEntry is one path of the new root.
type hostEntry struct {
	hdr  tar.Header
	src  string // a regular file's content: its real path on the host
	data []byte // or generated content
}

// hostPlan is the new root, path by path, before anything is written.
type hostPlan struct {
	root    string
	entries map[string]*hostEntry // by absolute path in the jail
	files   []string              // real host paths of the regular files copied
	now     time.Time
}

// addPath adds a host path as the loader reaches it: each symlink on the
// way as a symlink, the file it ends at, and the folders that hold them.
func (p *hostPlan) addPath(name string) error {
	real, links, err := ldso.Realpath(p.root, name)
	if err != nil {
		return err
	}
	for _, l := range links {
		if err := p.addHost(l.Path, name); err != nil {
			return err
		}
	}
	return p.addHost(real, name)
}

// addHost adds the host's file, symlink or folder at jail path name (which
// has no symlink in its folder part), with its folders, as they are on the
// host. for is the path it serves, for error messages.
func (p *hostPlan) addHost(name, forPath string) error {
	if name == "/" || p.entries[name] != nil {
		return nil
	}
	if first, _, _ := strings.Cut(strings.TrimPrefix(name, "/"), "/"); slices.Contains(sessionMounts, first) {
		return fmt.Errorf("copy %s: it lies under /%s, which every session mounts over", forPath, first)
	}
	if err := p.addHost(path.Dir(name), forPath); err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Lstat(hostFile(p.root, name), &st); err != nil {
		return fmt.Errorf("copy %s: %s: %w", forPath, name, err)
	}
	hdr := tar.Header{
		Name: strings.TrimPrefix(name, "/"), Mode: int64(st.Mode & 0o7777), Uid: int(st.Uid), Gid: int(st.Gid),
		ModTime: time.Unix(st.Mtim.Unix()),
	}
	e := &hostEntry{}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		hdr.Typeflag = tar.TypeDir
	case unix.S_IFLNK:
		target, err := os.Readlink(hostFile(p.root, name))
		if err != nil {
			return fmt.Errorf("copy %s: %w", forPath, err)
		}
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, target
	case unix.S_IFREG:
		// setuid and setgid are dropped: no_new_privs makes them inert in
		// a session, and on the host a setuid copy would outlive the
		// security updates of the original.
		hdr.Typeflag, hdr.Size, hdr.Mode = tar.TypeReg, st.Size, hdr.Mode&^(unix.S_ISUID|unix.S_ISGID)
		e.src = name
		p.files = append(p.files, name)
	default:
		return fmt.Errorf("copy %s: %s is not a regular file, symlink or folder", forPath, name)
	}
	e.hdr = hdr
	p.entries[name] = e
	return nil
}

// addExtras adds the documented folders and files a jail needs besides
// the binaries. Folders the binaries brought keep the host's metadata.
func (p *hostPlan) addExtras() error {
	for _, d := range hostJailDirs {
		if e := p.entries[d.path]; e != nil {
			if e.hdr.Typeflag != tar.TypeDir {
				return fmt.Errorf("add %s: the host binaries bring it as a non-folder", d.path)
			}
			continue
		}
		p.entries[d.path] = &hostEntry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: d.path[1:], Mode: d.mode, ModTime: p.now}}
	}
	for _, f := range hostJailFiles {
		if p.entries[f.path] != nil {
			return fmt.Errorf("add %s: the host binaries bring it already", f.path)
		}
		p.entries[f.path] = &hostEntry{
			hdr:  tar.Header{Typeflag: tar.TypeReg, Name: f.path[1:], Mode: 0o644, Size: int64(len(f.data)), ModTime: p.now},
			data: []byte(f.data),
		}
	}
	return nil
}

// write writes the plan into an empty root, parents before children.
func (p *hostPlan) write(dir string) error {
	root, err := tree.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	names := make([]string, 0, len(p.entries))
	for n := range p.entries {
		names = append(names, n)
	}
	sort.Strings(names)
	opts := tree.Options{NoChown: os.Geteuid() != 0}
	for _, n := range names {
		e := p.entries[n]
		if err := p.writeEntry(root, e, opts); err != nil {
			return err
		}
	}
	return nil
}

func (p *hostPlan) writeEntry(root *tree.Root, e *hostEntry, opts tree.Options) error {
	var body io.Reader = bytes.NewReader(e.data)
	if e.src != "" {
		f, err := os.Open(hostFile(p.root, e.src))
		if err != nil {
			return fmt.Errorf("copy %s: %w", e.src, err)
		}
		defer f.Close()
		body = f
	}
	if err := root.WriteEntry(&e.hdr, body, opts); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("copy /%s: it changed while being copied: %w", e.hdr.Name, err)
		}
		return err
	}
	return nil
}

// hostFile is the name of a host path in this process's view.
func hostFile(root, name string) string {
	if root == "/" {
		return name
	}
	return path.Join(root, name)
}
