package bootstrap

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"jailmgr/debian/archivetest"
	"jailmgr/session"
	"jailmgr/store"
)

// TestUpdate upgrades an image after its archive published a new version
// of a package: the new version holds the upgrade and the --include, its
// manifest says so, it shares unchanged files with the old one, and a
// session that was running on the old version sees no change.
func TestUpdate(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("bootstraps, chroots and mounts overlays: run as root (CI does)")
	}
	if testing.Short() {
		t.Skip("bootstraps an image with apt")
	}
	base, err := archivetest.MinimalSystem("apt", "perl-base", "sed", "grep", "findutils", "diffutils", "mawk", "debianutils")
	if err != nil {
		t.Skipf("cannot repack the host's apt into a test system: %v", err)
	}
	srv := archivetest.Serve(t, &archivetest.Archive{Suite: "bookworm", Codename: "bookworm", Packages: append(base, markerPackage())})
	st := openStore(t)
	o := options(srv)
	// apt in the image must trust the test archive's key.
	o.CustomizeHooks = []string{"cp " + srv.KeyringPath + ` "$1/etc/apt/trusted.gpg.d/jailmgr-test.gpg"`}
	res, err := runBootstrap(t, o, st)
	if err != nil {
		t.Fatal(err)
	}
	v1 := res.Image
	before, err := v1.Index()
	if err != nil {
		t.Fatal(err)
	}

	// A session on version 1, kept running across the update.
	sessDir := t.TempDir()
	for _, d := range []string{"upper", "work", "root"} {
		os.Mkdir(filepath.Join(sessDir, d), 0o755)
	}
	sess, err := session.ChrootOverlay(session.Overlay{Lower: v1.RootFS(), Upper: filepath.Join(sessDir, "upper"), Work: filepath.Join(sessDir, "work")},
		filepath.Join(sessDir, "root"), "/bin/sh", "-c", "cat /usr/share/marker/data; read x; cat /usr/share/marker/data; dpkg-query -W -f '${Version}\\n' jailmgr-marker")
	if err != nil {
		t.Fatal(err)
	}
	sess.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	in, _ := sess.StdinPipe()
	outPipe, _ := sess.StdoutPipe()
	if err := sess.Start(); err != nil {
		t.Fatal(err)
	}
	out := bufio.NewReader(outPipe)
	if line, _ := out.ReadString('\n'); line != "payload\n" {
		t.Fatalf("session on %s read %q", v1.Ref(), line)
	}

	// The archive publishes marker 1:2.1-1 and a new package.
	up := markerPackage()
	up.Version = "1:2.1-1"
	up.Files[1].Data = []byte("payload 2\n")
	extra := archivetest.Package{Name: "jailmgr-extra", Version: "1.0", Files: []archivetest.File{{Path: "/usr/share/extra/readme", Data: []byte("extra\n")}}}
	srv.Replace(t, &archivetest.Archive{Suite: "bookworm", Codename: "bookworm", Packages: append(append([]archivetest.Package{}, base...), up, extra)})

	var log bytes.Buffer
	ures, err := Update(context.Background(), st, UpdateOptions{Ref: "test", Include: []string{"jailmgr-extra"}, Log: &log})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	v2 := ures.Image
	if v2.Ref() != "test:2" || v2.Manifest.Parent != "test:1" {
		t.Errorf("update committed %s (parent %q), want test:2 from test:1", v2.Ref(), v2.Manifest.Parent)
	}
	// The version's folder is what a bootstrap's is: no overlay layers.
	if ents, err := os.ReadDir(v2.Dir); err == nil {
		for _, e := range ents {
			switch e.Name() {
			case "rootfs", "manifest.json", store.IndexFile:
			default:
				t.Errorf("%s's folder holds %s, left from the update", v2.Ref(), e.Name())
			}
		}
	}
	versions := map[string]string{}
	for _, p := range v2.Manifest.Packages {
		versions[p.Name] = p.Version
		if p.SHA256 == "" {
			t.Errorf("manifest of %s: %s has no SHA256", v2.Ref(), p.Name)
		} else if _, err := os.Stat(st.CachePath(p.SHA256)); err != nil && (p.Name == "jailmgr-marker" || p.Name == "jailmgr-extra") {
			t.Errorf("%s's download is not in the package cache: %v", p.Name, err)
		}
	}
	if versions["jailmgr-marker"] != "1:2.1-1" || versions["jailmgr-extra"] != "1.0" {
		t.Errorf("manifest of %s has marker %q and extra %q", v2.Ref(), versions["jailmgr-marker"], versions["jailmgr-extra"])
	}
	if len(v2.Manifest.Packages) != len(v1.Manifest.Packages)+1 {
		t.Errorf("%s has %d packages, %s had %d: want one more", v2.Ref(), len(v2.Manifest.Packages), v1.Ref(), len(v1.Manifest.Packages))
	}
	if data, _ := os.ReadFile(filepath.Join(v2.RootFS(), "usr/share/marker/data")); string(data) != "payload 2\n" {
		t.Errorf("%s holds marker data %q", v2.Ref(), data)
	}
	if _, err := os.Stat(filepath.Join(v2.RootFS(), "usr/sbin/policy-rc.d")); err == nil {
		t.Error("the update left policy-rc.d behind")
	}
	for _, d := range []string{"var/lib/apt/lists", "var/cache/apt/archives"} {
		ents, _ := os.ReadDir(filepath.Join(v2.RootFS(), d))
		for _, e := range ents {
			if e.Name() != "partial" && e.Name() != "lock" {
				t.Errorf("%s: %s/%s was not cleaned up", v2.Ref(), d, e.Name())
			}
		}
	}
	if ures.Shared < v1.Manifest.Size/2 {
		t.Errorf("%s shares %d bytes with %s (of %d): want most of it", v2.Ref(), ures.Shared, v1.Ref(), v1.Manifest.Size)
	}
	if !strings.Contains(strings.Join(ures.Upgraded, "\n"), "jailmgr-marker 1:2.0~rc1-1 → 1:2.1-1") {
		t.Errorf("changes reported: %q", ures.Upgraded)
	}

	// Version 1 is byte for byte what it was, and its session never noticed.
	after, err := store.BuildIndex(v1.RootFS())
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Errorf("%s had %d paths, now %d", v1.Ref(), len(before), len(after))
	}
	for i := range before {
		if i < len(after) && !after[i].Same(&before[i]) {
			t.Errorf("%s changed: %+v, was %+v", v1.Ref(), after[i], before[i])
		}
	}
	io.WriteString(in, "\n")
	in.Close()
	rest, _ := io.ReadAll(out)
	if err := sess.Wait(); err != nil {
		t.Fatalf("session on %s: %v", v1.Ref(), err)
	}
	if string(rest) != "payload\n1:2.0~rc1-1\n" {
		t.Errorf("session on %s saw %q after the update", v1.Ref(), rest)
	}
	killUpdates(t, st)
}

// TestUpdateNothingNew: an update that finds nothing to upgrade or install
// commits nothing (the version it started from is current, no staging is
// left); installing a package the image lacks, or upgrading one the
// archive published anew, commits the next version.
func TestUpdateNothingNew(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("bootstraps, chroots and mounts overlays: run as root (CI does)")
	}
	if testing.Short() {
		t.Skip("bootstraps an image with apt")
	}
	base, err := archivetest.MinimalSystem("apt", "perl-base", "sed", "grep", "findutils", "diffutils", "mawk", "debianutils")
	if err != nil {
		t.Skipf("cannot repack the host's apt into a test system: %v", err)
	}
	extra := archivetest.Package{Name: "jailmgr-extra", Version: "1.0", Files: []archivetest.File{{Path: "/usr/share/extra/readme", Data: []byte("extra\n")}}}
	archive := func(marker archivetest.Package) *archivetest.Archive {
		return &archivetest.Archive{Suite: "bookworm", Codename: "bookworm", Packages: append(append([]archivetest.Package{}, base...), marker, extra)}
	}
	srv := archivetest.Serve(t, archive(markerPackage()))
	st := openStore(t)
	o := options(srv)
	o.CustomizeHooks = []string{"cp " + srv.KeyringPath + ` "$1/etc/apt/trusted.gpg.d/jailmgr-test.gpg"`}
	if _, err := runBootstrap(t, o, st); err != nil {
		t.Fatalf("%v\n%s", err, o.Log)
	}
	update := func(what, want string, current bool, include ...string) {
		t.Helper()
		var log bytes.Buffer
		res, err := Update(context.Background(), st, UpdateOptions{Ref: "test", Include: include, Log: &log})
		if err != nil {
			t.Fatalf("%s: %v\n%s", what, err, log.String())
		}
		if res.Image.Ref() != want || res.Current != current {
			t.Errorf("%s: %s (current %v), want %s (current %v)\n%s", what, res.Image.Ref(), res.Current, want, current, log.String())
		}
		imgs, err := st.Images()
		if err != nil {
			t.Fatal(err)
		}
		if last := imgs[len(imgs)-1]; last.Ref() != want {
			t.Errorf("%s: the newest version is %s, want %s", what, last.Ref(), want)
		}
		if ents, _ := os.ReadDir(filepath.Join(st.Dir, "staging")); len(ents) != 0 {
			t.Errorf("%s: %d staging entries left", what, len(ents))
		}
	}
	update("nothing new", "test:1", true)
	update("--include of an installed package", "test:1", true, "jailmgr-marker")
	update("--include of a new package", "test:2", false, "jailmgr-extra")
	update("nothing new after the install", "test:2", true)

	up := markerPackage()
	up.Version = "1:2.1-1"
	srv.Replace(t, archive(up))
	update("a newer marker in the archive", "test:3", false)
	v3, err := st.Resolve("test:3")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range v3.Manifest.Packages {
		if p.Name == "jailmgr-marker" && p.Version != "1:2.1-1" {
			t.Errorf("test:3 has marker %s, want 1:2.1-1", p.Version)
		}
	}
	if v3.Manifest.InputsSHA256 != "" {
		t.Errorf("the update's manifest keeps the bootstrap's inputs %s: a bootstrap would reuse it", v3.Manifest.InputsSHA256)
	}
}

// TestAptChangedState decides from the overlay's upper layer whether apt
// changed the package state, as the overlay shows it: a copy of the same
// bytes is no change, a whiteout or an opaque folder hides lower's file.
func TestAptChangedState(t *testing.T) {
	status := "Package: base\nStatus: install ok installed\nVersion: 1\n\n"
	cases := []struct {
		name   string
		root   bool // whiteouts and trusted.* xattrs need root
		upper  func(t *testing.T, upper string)
		change bool
	}{
		{name: "empty upper", upper: func(*testing.T, string) {}},
		{name: "lists, caches and locks only", upper: func(t *testing.T, u string) {
			writeTestFile(t, u, "var/lib/apt/lists/x_InRelease", "x")
			writeTestFile(t, u, "var/lib/dpkg/lock", "")
			writeTestFile(t, u, "var/cache/apt/pkgcache.bin", "x")
		}},
		{name: "status copied up unchanged", upper: func(t *testing.T, u string) { writeTestFile(t, u, "var/lib/dpkg/status", status) }},
		{name: "status rewritten", change: true, upper: func(t *testing.T, u string) {
			writeTestFile(t, u, "var/lib/dpkg/status", status+"Package: new\nStatus: install ok installed\nVersion: 1\n\n")
		}},
		{name: "a package marked manual", change: true, upper: func(t *testing.T, u string) {
			writeTestFile(t, u, "var/lib/apt/extended_states", "Package: base\nAuto-Installed: 0\n")
		}},
		{name: "status whited out", root: true, change: true, upper: func(t *testing.T, u string) {
			os.MkdirAll(filepath.Join(u, "var/lib/dpkg"), 0o755)
			if err := syscall.Mknod(filepath.Join(u, "var/lib/dpkg/status"), syscall.S_IFCHR, 0); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "dpkg's folder opaque", root: true, change: true, upper: func(t *testing.T, u string) {
			writeTestFile(t, u, "var/lib/dpkg/lock", "")
			if err := syscall.Setxattr(filepath.Join(u, "var/lib/dpkg"), "trusted.overlay.opaque", []byte("y"), 0); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.root && os.Getuid() != 0 {
				t.Skip("makes whiteouts and trusted.* xattrs: run as root (CI does)")
			}
			lower, upper := t.TempDir(), t.TempDir()
			writeTestFile(t, lower, "var/lib/dpkg/status", status)
			c.upper(t, upper)
			changed, err := aptChangedState(lower, upper)
			if err != nil {
				t.Fatal(err)
			}
			if changed != c.change {
				t.Errorf("changed = %v, want %v", changed, c.change)
			}
		})
	}
}

func writeTestFile(t *testing.T, root, rel, data string) {
	t.Helper()
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
