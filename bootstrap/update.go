package bootstrap

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

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
	// Current is set when apt had nothing to upgrade or install: nothing
	// was committed and Image is From.
	Current bool
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
	logPath := "" // apt's log: kept in the store if the update fails
	defer func() {
		if !committed {
			err = abandon(ctx, st, stg, logPath, "update-"+from.Name, err)
		}
	}()
	upper, work, mnt := filepath.Join(stg.Dir, "upper"), filepath.Join(stg.Dir, "work"), filepath.Join(stg.Dir, "mnt")
	for _, d := range []string{upper, work, mnt} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return nil, fmt.Errorf("update %s: %w", from.Ref(), err)
		}
	}
	logFile, err := os.OpenFile(filepath.Join(stg.Dir, "update.log"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("update %s: %w", from.Ref(), err)
	}
	defer logFile.Close()
	logPath = logFile.Name()
	start := time.Now()
	fmt.Fprintf(o.Log, "upgrading %s in a session\n", from.Ref())
	if err := runUpdate(ctx, from, upper, work, mnt, o, logFile); err != nil {
		return nil, err
	}
	changed, err := aptChangedState(from.RootFS(), upper)
	if err != nil {
		return nil, fmt.Errorf("update %s: %w", from.Ref(), err)
	}
	if !changed {
		// A version equal to its parent would only be one more to keep.
		fmt.Fprintf(o.Log, "apt upgraded, installed and removed nothing in %s: nothing to commit (%s)\n", from.Ref(), since(start))
		return &UpdateResult{Image: from, From: from, Current: true}, nil
	}
	archives, inRelease, pockets, err := collectDownloads(st, upper, &from.Manifest)
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
	// The overlay's layers were the update's workspace: the commit renames
	// the staging area into the version's folder, which must not carry
	// them (apt's lists alone are tens of MiB).
	for _, d := range []string{upper, work, mnt} {
		if err := os.RemoveAll(d); err != nil {
			return nil, fmt.Errorf("update %s: remove %s: %w", from.Ref(), filepath.Base(d), err)
		}
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
	m.Pockets = pockets
	if m.Size, err = store.DiskUsage(stg.Root()); err != nil {
		return nil, err
	}
	// The log is not part of the version.
	logFile.Close()
	os.Remove(logPath)
	logPath = ""
	img, err := stg.CommitContext(ctx, from.Name, m)
	if err != nil {
		return nil, err
	}
	committed = true
	res = &UpdateResult{Image: img, From: from, Upgraded: packageChanges(from.Manifest.Packages, m.Packages), Shared: stg.Shared}
	fmt.Fprintf(o.Log, "committed %s from %s: %d packages changed, %.1f MiB shared with %s (%s)\n",
		img.Ref(), from.Ref(), len(res.Upgraded), float64(res.Shared)/(1<<20), from.Ref(), since(start))
	return res, nil
}

// runUpdate runs apt in the overlay. Its output goes to logFile, whose end
// is shown when it fails.
func runUpdate(ctx context.Context, from *store.Image, upper, work, mnt string, o UpdateOptions, logFile *os.File) error {
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
	// As in a bootstrap's configure: a Ctrl-C is jailmgr's to handle, and
	// killing the helper ends the session's every process.
	cmd.SysProcAttr.Setpgid = true
	err = cmd.Start()
	if err == nil {
		stop := context.AfterFunc(ctx, func() { cmd.Process.Kill() })
		err = cmd.Wait()
		stop()
	}
	if ctx.Err() != nil {
		return fmt.Errorf("update %s: %w", from.Ref(), context.Cause(ctx))
	}
	if err != nil {
		return fmt.Errorf("update %s: apt failed (%v):\n%s", from.Ref(), err, tail(logFile.Name(), 25))
	}
	return nil
}

// aptStateFiles are what dpkg and apt rewrite when they install, upgrade,
// remove or configure a package, or mark one as installed by hand. The rest
// of what an update leaves in the upper layer is apt's lists and caches
// (which cleanup removes from every version) and lock files it opened.
var aptStateFiles = []string{"var/lib/dpkg/status", "var/lib/apt/extended_states"}

// aptChangedState reports whether the overlay's upper layer changed any of
// aptStateFiles from what lower holds: the decision rests on what apt did
// to the packages, not on what it printed.
func aptChangedState(lower, upper string) (bool, error) {
	lr, err := os.OpenRoot(lower)
	if err != nil {
		return false, fmt.Errorf("compare package state: %w", err)
	}
	defer lr.Close()
	ur, err := os.OpenRoot(upper)
	if err != nil {
		return false, fmt.Errorf("compare package state: %w", err)
	}
	defer ur.Close()
	for _, rel := range aptStateFiles {
		before, err := lr.ReadFile(rel)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return false, fmt.Errorf("compare package state: %w", err)
		}
		hadIt := err == nil
		after, hasIt, err := overlayFile(lr, ur, rel)
		if err != nil {
			return false, fmt.Errorf("compare package state: %w", err)
		}
		if hadIt != hasIt || !bytes.Equal(before, after) {
			return true, nil
		}
	}
	return false, nil
}

// overlayFile reads rel as an overlay of upper over lower showed it:
// upper's copy if it has one, nothing if a whiteout or an opaque folder
// of upper hides it, lower's copy otherwise.
func overlayFile(lower, upper *os.Root, rel string) (data []byte, ok bool, err error) {
	parts := strings.Split(rel, "/")
	hidden := false
	for i := 1; i <= len(parts); i++ {
		p := strings.Join(parts[:i], "/")
		fi, err := upper.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			break // upper has nothing at or below p
		}
		if err != nil {
			return nil, false, err
		}
		switch {
		case isWhiteout(fi):
			return nil, false, nil
		case i == len(parts):
			data, err := upper.ReadFile(rel)
			return data, err == nil, err
		case !fi.IsDir():
			return nil, false, nil // a file of upper where lower has a folder
		}
		opaque, err := isOpaque(upper, p)
		if err != nil {
			return nil, false, err
		}
		hidden = hidden || opaque
	}
	if hidden {
		return nil, false, nil
	}
	data, err = lower.ReadFile(rel)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	return data, err == nil, err
}

// isWhiteout tells an overlay's whiteout, a 0/0 character device.
func isWhiteout(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && fi.Mode()&fs.ModeCharDevice != 0 && st.Rdev == 0
}

// isOpaque tells a folder of upper that hides lower's folder of that name.
func isOpaque(upper *os.Root, dir string) (bool, error) {
	f, err := upper.Open(dir)
	if err != nil {
		return false, err
	}
	defer f.Close()
	var buf [1]byte
	n, err := unix.Fgetxattr(int(f.Fd()), "trusted.overlay.opaque", buf[:])
	if errors.Is(err, unix.ENODATA) || errors.Is(err, unix.ENOTSUP) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read opaque mark of %s: %w", dir, err)
	}
	return n == 1 && buf[0] == 'y', nil
}

func upperHas(upper *os.Root, rel string) bool {
	_, err := upper.Lstat(rel)
	return err == nil
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
// "name_version_arch". It also returns the state of every pocket the image
// was built from, with the SHA256 of the InRelease file apt fetched for it
// where there is one, and that of the release pocket on its own.
func collectDownloads(st *store.Store, upper string, from *store.Manifest) (map[string]string, string, []store.Pocket, error) {
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
			return nil, "", nil, err
		}
		key, err := url.PathUnescape(strings.TrimSuffix(e.Name(), ".deb"))
		if err != nil {
			continue
		}
		out[key] = sum
		dst := st.CachePath(sum)
		if _, err := os.Stat(dst); err != nil {
			if err := os.Rename(p, dst); err != nil {
				return nil, "", nil, fmt.Errorf("cache %s: %w", e.Name(), err)
			}
		}
	}
	pockets := slices.Clone(from.Pockets)
	if len(pockets) == 0 {
		// Built before pockets were recorded: from the release alone.
		pockets = []store.Pocket{{Suite: from.Suite, Mirror: from.Mirror, InReleaseSHA256: from.InReleaseSHA256}}
	}
	var inRelease string
	lists := filepath.Join(upper, "var/lib/apt/lists")
	for i, pk := range pockets {
		data, err := os.ReadFile(filepath.Join(lists, aptListName(pk.Mirror+"/dists/"+pk.Suite+"/InRelease")))
		if err != nil {
			// A mirror URL apt names otherwise than aptListName does:
			// the suite's InRelease, if apt fetched only one.
			found, _ := filepath.Glob(filepath.Join(lists, "*_dists_"+pk.Suite+"_InRelease"))
			if len(found) != 1 {
				continue
			}
			if data, err = os.ReadFile(found[0]); err != nil {
				continue
			}
		}
		h := sha256.Sum256(data)
		pockets[i].InReleaseSHA256 = hex.EncodeToString(h[:])
		if i == 0 {
			inRelease = pockets[i].InReleaseSHA256
		}
	}
	return out, inRelease, pockets, nil
}

// aptListName is the name apt gives the file it downloads from uri in
// its lists folder (apt-pkg's URItoFileName): the URI without scheme and
// credentials, unsafe characters %-quoted, slashes turned into '_'.
func aptListName(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return ""
	}
	s := u.Host + u.Path
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '/':
			b.WriteByte('_')
		case c <= 0x20 || c >= 0x7f || strings.IndexByte("\\|{}[]<>\"^~_=!@#$%^&*", c) >= 0:
			fmt.Fprintf(&b, "%%%02x", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
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
	// The tree is no longer what a bootstrap of those inputs builds.
	m.InputsSHA256 = ""
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
