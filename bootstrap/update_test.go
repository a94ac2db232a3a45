package bootstrap

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
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
