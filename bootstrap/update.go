package bootstrap

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"jailmgr/debian/control"
	"jailmgr/session"
	"jailmgr/store"
	"jailmgr/store/tree"
)

// UpdateOptions say which image to update and what to add.
type UpdateOptions struct {
	Ref     string   // the version to start from: NAME, NAME:N or a tag
	Include []string // packages to install besides the upgrade
	Log     io.Writer
}

// UpdateResult is what Update committed.
type UpdateResult struct {
	Image    *store.Image
	From     *store.Image
	Upgraded []string // "name old → new", and "name (new) version" for installs
	Shared   int64    // bytes of the new version shared with the one it came from
}

// updateScript runs inside the image. Daemons stay off while packages
// upgrade (an existing policy-rc.d is the user's and is kept).
const updateScript = `set -e
exec </dev/null
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
	chmod 755 /usr/sbin/policy-rc.d
	trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get -q update
apt-get -q -y -o APT::Install-Recommends=false -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold dist-upgrade
if [ $# -gt 0 ]; then
	apt-get -q -y -o APT::Install-Recommends=false -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold install "$@"
fi
`

// Update builds the next version of an image from the one o.Ref names: an
// overlay of it is upgraded with the image's own apt in a namespace session
// (network from the host, mounts private to the session), then the overlay's
// changes are merged with hard links to every unchanged file and committed
// as a new version with a fresh manifest. The version it starts from is
// never written to, so sessions running on it carry on untouched.
func Update(ctx context.Context, st *store.Store, o UpdateOptions) (res *UpdateResult, err error) {
	if o.Log == nil {
		o.Log = io.Discard
	}
	for _, p := range o.Include {
		if !validPackageName(p) {
			return nil, fmt.Errorf("%w: --include %q is not a package name", ErrUsage, p)
		}
	}
	from, err := st.Resolve(o.Ref)
	if err != nil {
		return nil, err
	}
	release, err := st.Use(from)
	if err != nil {
		return nil, err
	}
	defer release()
	if _, err := os.Stat(filepath.Join(from.RootFS(), "usr/bin/apt-get")); err != nil {
		return nil, fmt.Errorf("update %s: the image has no apt-get, so it cannot be upgraded from its archive", from.Ref())
	}
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
	upper, work, mnt := filepath.Join(stg.Dir, "upper"), filepath.Join(stg.Dir, "work"), filepath.Join(stg.Dir, "mnt")
	for _, d := range []string{upper, work, mnt} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return nil, fmt.Errorf("update %s: %w", from.Ref(), err)
		}
	}
	start := time.Now()
	fmt.Fprintf(o.Log, "upgrading %s in a session\n", from.Ref())
	if err := runUpdate(ctx, from, upper, work, mnt, o); err != nil {
		return nil, err
	}
	archives, inRelease, err := collectDownloads(st, upper, from.Manifest.Suite)
	if err != nil {
		return nil, err
	}
	var clamp *time.Time
	if v := os.Getenv("SOURCE_DATE_EPOCH"); v != "" {
		secs, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: SOURCE_DATE_EPOCH=%q is not a number of seconds", ErrUsage, v)
		}
		t := time.Unix(secs, 0)
		clamp = &t
	}
	if err := store.MergeOverlay(from.RootFS(), upper, stg.Root(), clamp); err != nil {
		return nil, err
	}
	root, err := tree.OpenRoot(stg.Root())
	if err != nil {
		return nil, err
	}
	defer root.Close()
	if err := cleanup(root); err != nil {
		return nil, err
	}
	m, err := updatedManifest(from, root, archives, inRelease)
	if err != nil {
		return nil, err
	}
	if m.Size, err = store.DiskUsage(stg.Root()); err != nil {
		return nil, err
	}
	img, err := stg.Commit(from.Name, m)
	if err != nil {
		return nil, err
	}
	committed = true
	res = &UpdateResult{Image: img, From: from, Upgraded: packageChanges(from.Manifest.Packages, m.Packages), Shared: stg.Shared}
	fmt.Fprintf(o.Log, "committed %s from %s: %d packages changed, %.1f MiB shared with %s (%s)\n",
		img.Ref(), from.Ref(), len(res.Upgraded), float64(res.Shared)/(1<<20), from.Ref(), since(start))
	return res, nil
}

// runUpdate runs apt in the overlay. Its output goes to a log that is shown
// when it fails.
func runUpdate(ctx context.Context, from *store.Image, upper, work, mnt string, o UpdateOptions) error {
	logFile, err := os.CreateTemp(filepath.Dir(upper), "update-*.log")
	if err != nil {
		return err
	}
	defer logFile.Close()
	args := append([]string{"/bin/sh", "-c", updateScript, "jailmgr-update"}, o.Include...)
	cmd, err := session.ChrootOverlay(session.Overlay{Lower: from.RootFS(), Upper: upper, Work: work}, mnt, args...)
	if err != nil {
		return err
	}
	// What apt and dpkg write lands in a version that is not committed
	// yet: their fsyncs would only slow the update down.
	session.SuppressSync(cmd)
	cmd.Env = []string{
		"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LC_ALL=C", "LANG=C",
		"DEBIAN_FRONTEND=noninteractive", "DEBCONF_NONINTERACTIVE_SEEN=true",
	}
	// The host's resolver settings at the time of the update, as the
	// bootstrap writes them.
	if data, err := os.ReadFile("/etc/resolv.conf"); err == nil {
		os.MkdirAll(filepath.Join(upper, "etc"), 0o755)
		if err := copyUpMeta(from.RootFS(), upper, "etc"); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(upper, "etc/resolv.conf"), data, 0o644); err != nil {
			return err
		}
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	go func() {
		<-ctx.Done()
		if cmd.Process != nil {
			cmd.Process.Kill()
		}
	}()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("update %s: apt failed (%v):\n%s", from.Ref(), err, tail(logFile.Name(), 25))
	}
	return ctx.Err()
}

// copyUpMeta gives a folder made in the upper layer the owner, mode and
// times of the same folder below, as an overlay copy-up would.
func copyUpMeta(lower, upper, rel string) error {
	fi, err := os.Lstat(filepath.Join(lower, rel))
	if err != nil {
		return nil
	}
	p := filepath.Join(upper, rel)
	if err := os.Chmod(p, fi.Mode().Perm()); err != nil {
		return err
	}
	return os.Chtimes(p, fi.ModTime(), fi.ModTime())
}

// collectDownloads moves the packages apt downloaded into the store's
// cache (where gc sees them referenced) and returns them by
// "name_version_arch", with the SHA256 of the suite's InRelease file apt
// fetched.
func collectDownloads(st *store.Store, upper, suite string) (map[string]string, string, error) {
	out := map[string]string{}
	dir := filepath.Join(upper, "var/cache/apt/archives")
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), ".deb") {
			continue
		}
		p := filepath.Join(dir, e.Name())
		sum, err := store.HashFile(p, make([]byte, 256<<10))
		if err != nil {
			return nil, "", err
		}
		key, err := url.PathUnescape(strings.TrimSuffix(e.Name(), ".deb"))
		if err != nil {
			continue
		}
		out[key] = sum
		dst := st.CachePath(sum)
		if _, err := os.Stat(dst); err != nil {
			if err := os.Rename(p, dst); err != nil {
				return nil, "", fmt.Errorf("cache %s: %w", e.Name(), err)
			}
		}
	}
	var inRelease string
	lists, _ := filepath.Glob(filepath.Join(upper, "var/lib/apt/lists", "*_dists_"+suite+"_InRelease"))
	if len(lists) == 1 {
		data, err := os.ReadFile(lists[0])
		if err == nil {
			h := sha256.Sum256(data)
			inRelease = hex.EncodeToString(h[:])
		}
	}
	return out, inRelease, nil
}

// updatedManifest is the manifest of the new version: the old one's origin
// with the packages dpkg now has installed.
func updatedManifest(from *store.Image, root *tree.Root, archives map[string]string, inRelease string) (*store.Manifest, error) {
	data, err := root.ReadFile("var/lib/dpkg/status")
	if err != nil {
		return nil, fmt.Errorf("read the updated dpkg status: %w", err)
	}
	old := map[string]store.Package{}
	for _, p := range from.Manifest.Packages {
		old[p.Name+"_"+p.Version+"_"+p.Arch] = p
	}
	m := from.Manifest
	m.Packages = nil
	m.Parent = from.Ref()
	m.Created = created()
	if inRelease != "" {
		m.InReleaseSHA256 = inRelease
	}
	r := control.NewReader(bytes.NewReader(data), "var/lib/dpkg/status")
	for {
		p, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if !strings.HasSuffix(p.Get("Status"), " installed") {
			continue
		}
		pkg := store.Package{Name: p.Get("Package"), Version: p.Get("Version"), Arch: p.Get("Architecture")}
		key := pkg.Name + "_" + pkg.Version + "_" + pkg.Arch
		if o, ok := old[key]; ok {
			pkg.SHA256 = o.SHA256
		} else {
			// apt names the file without the epoch's colon.
			_, v, hasEpoch := strings.Cut(pkg.Version, ":")
			if !hasEpoch {
				v = pkg.Version
			}
			pkg.SHA256 = archives[key]
			if pkg.SHA256 == "" {
				pkg.SHA256 = archives[pkg.Name+"_"+v+"_"+pkg.Arch]
			}
		}
		m.Packages = append(m.Packages, pkg)
	}
	sort.Slice(m.Packages, func(i, j int) bool { return m.Packages[i].Name < m.Packages[j].Name })
	return &m, nil
}

// packageChanges lists what differs between two package lists.
func packageChanges(before, after []store.Package) []string {
	was := map[string]string{}
	for _, p := range before {
		was[p.Name] = p.Version
	}
	var out []string
	for _, p := range after {
		switch v, ok := was[p.Name]; {
		case !ok:
			out = append(out, p.Name+" (new) "+p.Version)
		case v != p.Version:
			out = append(out, p.Name+" "+v+" → "+p.Version)
		}
		delete(was, p.Name)
	}
	for n, v := range was {
		out = append(out, n+" "+v+" (removed)")
	}
	sort.Strings(out)
	return out
}

// validPackageName is Debian policy's rule for a package name, with an
// optional ":arch" or "=version" as apt-get accepts.
func validPackageName(s string) bool {
	name, _, _ := strings.Cut(s, "=")
	name, _, _ = strings.Cut(name, ":")
	if len(name) < 2 || !(name[0] >= 'a' && name[0] <= 'z' || name[0] >= '0' && name[0] <= '9') {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', strings.ContainsRune("+-.:=~", r):
		default:
			return false
		}
	}
	return true
}
