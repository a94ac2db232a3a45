package conf

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// fixtureDir is the schroot configuration the golden tests of the schroot
// front end use too (testdata/schroot/README.md).
const fixtureDir = "../testdata/schroot/etc"

func loadFixture(t *testing.T) *SchrootConfig {
	t.Helper()
	c, err := LoadSchroot(fixtureDir)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestLoadSchrootFixture(t *testing.T) {
	c := loadFixture(t)
	if len(c.Warnings) != 0 {
		t.Errorf("warnings: %v", c.Warnings)
	}
	b := c.Chroots["bookworm"]
	if b == nil {
		t.Fatal("bookworm missing")
	}
	want := &Chroot{Name: "bookworm", Type: "directory", Description: "Debian bookworm (directory)", Directory: "/srv/chroot/bookworm",
		Users: []string{"alice", "bob"}, Groups: []string{"sbuild"}, RootUsers: []string{"alice"}, RootGroups: []string{"root"},
		Aliases: []string{"stable", "bookworm-amd64"}, PreserveEnvironment: true, Shell: "/bin/bash",
		EnvironmentFilter: DefaultEnvironmentFilter, Profile: "minimal", CommandPrefix: []string{"eatmydata", "--"},
		Verbosity: "normal", Personality: "linux32",
		UserData:  map[string]string{"setup.config": "minimal/config", "setup.copyfiles": "minimal/copyfiles", "setup.fstab": "minimal/fstab", "setup.nssdatabases": "minimal/nssdatabases"},
		UnionType: "none", UnionOverlayDirectory: DefaultUnionOverlayDirectory, UnionUnderlayDirectory: DefaultUnionUnderlayDirectory,
		SourceClone: true, File: filepath.Join(fixtureDir, "schroot.conf"), Line: 4}
	if !reflect.DeepEqual(b, want) {
		t.Errorf("bookworm =\n%+v\nwant\n%+v", b, want)
	}
	ovl := c.Chroots["trixie-ovl"]
	if ovl.UnionType != "overlay" || ovl.UnionOverlayDirectory != "/var/cache/jm-overlay" || ovl.Verbosity != "quiet" ||
		!slices.Equal(ovl.SourceUsers, []string{"bob"}) || ovl.UserData["build.jobs"] != "4" ||
		!slices.Equal(ovl.UserModifiableKeys, []string{"build.jobs"}) || ovl.UserData["setup.fstab"] != "default/fstab" {
		t.Errorf("trixie-ovl = %+v", ovl)
	}
	if tb := c.Chroots["tarball"]; tb.Type != "file" || tb.Tarball != "/srv/chroot/tarball.tar.gz" || !tb.SourceClonable() {
		t.Errorf("tarball = %+v", tb)
	}
	if p := c.Chroots["plain-host"]; p.Type != "plain" || p.Path() != "/srv/chroot/plain" || p.SessionClonable() || p.RunSetupScripts() {
		t.Errorf("plain-host = %+v", p)
	}
}

func TestSchrootNamespaces(t *testing.T) {
	c := loadFixture(t)
	got := append(c.AliasNames("chroot"), c.AliasNames("source")...)
	want := strings.Fields(`chroot:bookworm chroot:bookworm-amd64 chroot:plain-host chroot:sid chroot:sid-amd64-sbuild
chroot:sid-source chroot:stable chroot:tarball chroot:tb chroot:tb-source chroot:trixie-ovl chroot:unstable-amd64-sbuild
chroot:unstable-amd64-sbuild-source source:sid source:sid-amd64-sbuild source:tarball source:tb source:trixie-ovl
source:unstable-amd64-sbuild`)
	if !slices.Equal(got, want) {
		t.Errorf("aliases =\n%v\nwant (schroot 1.6.13's -l)\n%v", got, want)
	}
	for _, c2 := range []struct{ hint, name, ns, chroot string }{
		{"", "sid", "chroot", "sid-amd64-sbuild"},
		{"", "source:sid", "source", "sid-amd64-sbuild"},
		{"", "sid-source", "source", "sid-amd64-sbuild"},
		{"session", "chroot:tb", "chroot", "tarball"},
		{"session", "plain-host", "chroot", "plain-host"},
		{"", "stable", "chroot", "bookworm"},
	} {
		ns, ch, ok := c.Find(c2.hint, c2.name)
		if !ok || ns != c2.ns || ch.Name != c2.chroot {
			t.Errorf("Find(%q, %q) = %s, %v, %v; want %s:%s", c2.hint, c2.name, ns, ch, ok, c2.ns, c2.chroot)
		}
	}
	if _, _, ok := c.Find("session", "sid"); ok {
		t.Errorf("a chroot's alias was found among sessions")
	}
	src, _, _ := c.Find("", "source:trixie-ovl")
	_, s, _ := c.Find("", "source:trixie-ovl")
	if src != "source" || s.Description != "Trixie overlay (source chroot)" || !slices.Equal(s.Users, []string{"bob"}) || !s.Source || s.UnionFacet() {
		t.Errorf("source:trixie-ovl = %+v", s)
	}
}

func writeSchroot(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		write(t, filepath.Join(dir, name), text)
	}
	return dir
}

func TestSchrootWarnings(t *testing.T) {
	dir := writeSchroot(t, map[string]string{"chroot.d/w": `# comment
[w]
type=directory
directory=/srv/w
bogus=1
foo.bar=2
run-exec-scripts=true
preserve-environment=maybe
source-users=x
[lvm]
type=lvm-snapshot
device=/dev/vg/x
`, "chroot.d/w.dpkg-old": "not read", "chroot.d/w~": "not read"})
	c, err := LoadSchroot(dir)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "chroot.d/w")
	var got []string
	for _, w := range c.Warnings {
		got = append(got, w.Error())
	}
	want := []string{
		file + ":7: [w]: Obsolete key ‘run-exec-scripts’ used",
		file + ":8: [w] preserve-environment: Could not parse value ‘maybe’",
		file + ":5: [w] bogus: Configuration key name ‘bogus’ is not a permitted name.",
		file + ":9: [w] source-users: Configuration key name ‘source-users’ is not a permitted name.",
		file + ":10: [lvm]: chroot type ‘lvm-snapshot’ is not supported by jailmgr; chroot skipped",
	}
	if !slices.Equal(got, want) {
		t.Errorf("warnings:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if c.Chroots["w"].UserData["foo.bar"] != "2" || c.Chroots["lvm"] != nil {
		t.Errorf("chroots = %v", c.Chroots)
	}
}

func TestSchrootErrors(t *testing.T) {
	for _, c := range []struct{ text, want string }{
		{"[bad]\ntype=directory\ndirectory=/x\nnoequals\n", ":4: Invalid line: “noequals”"},
		{"[bad]\ntype=directory\n", ":1: [bad]: Required key ‘directory’ is missing"},
		{"[bad]\ntype=weird\n", ":1: Unknown chroot type ‘weird’"},
		{"[bad]\ntype=directory\ndirectory=/x\ndirectory=/y\n", ":4: [bad]: Duplicate key ‘directory’"},
		{"[bad]\ntype=directory\ndirectory=relative\n", ":3: [bad] directory: relative: Directory must have an absolute path"},
		{"[bad]\ntype=directory\ndirectory=/x\npersonality=foo\n", ":4: [bad] personality: Personality ‘foo’ is unknown"},
		{"[bad]\ntype=directory\ndirectory=/x\nmount-location=/y\n", ":4: [bad]: Disallowed key ‘mount-location’ used"},
		{"[bad]\ntype=file\n", ":1: [bad]: Required key ‘file’ is missing"},
		{"[bad]\ntype=directory\ndirectory=/x\nunion-type=zfs\n", ":4: [bad] union-type: Unknown filesystem union type ‘zfs’"},
		{"key=value\n", ":1: No group specified: “key=value”"},
		{"[a]\ntype=plain\ndirectory=/a\n[a]\n", ":4: Duplicate group ‘a’"},
		{"[a]\ntype=plain\ndirectory=/a\naliases=x:y\n", ":4: [a] aliases: x:y: Invalid name"},
	} {
		dir := writeSchroot(t, map[string]string{"schroot.conf": c.text})
		_, err := LoadSchroot(dir)
		if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "schroot.conf")+c.want) || !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: err = %v, want …%s", c.text, err, c.want)
		}
	}
	dir := writeSchroot(t, map[string]string{"schroot.conf": "[a]\ntype=plain\ndirectory=/a\n", "chroot.d/b": "[a]\ntype=plain\ndirectory=/b\n"})
	if _, err := LoadSchroot(dir); err == nil || !strings.Contains(err.Error(), "A chroot or alias ‘chroot:a’ already exists with this name") {
		t.Errorf("duplicate name: %v", err)
	}
	dir = writeSchroot(t, map[string]string{"schroot.conf": "[a]\ntype=plain\ndirectory=/a\naliases=x\n[b]\ntype=plain\ndirectory=/b\naliases=x\n"})
	c, err := LoadSchroot(dir)
	if err != nil || len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0].Error(), "Alias ‘x’ already associated with ‘chroot:a’ chroot") {
		t.Errorf("alias clash: %v %v", err, c.Warnings)
	}
}

func TestSchrootJailFromProfile(t *testing.T) {
	// sbuild-createchroot's definition, with schroot not installed: the
	// built-in sbuild profile applies.
	dir := writeSchroot(t, map[string]string{"chroot.d/sid-amd64-sbuild-abc123": `[sid-amd64-sbuild]
description=Debian sid/amd64 autobuilder
groups=root,sbuild
root-groups=root,sbuild
profile=sbuild
type=directory
directory=/srv/chroot/sid-amd64-sbuild
union-type=overlay
`})
	c, err := LoadSchroot(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, ch, _ := c.Find("", "sid-amd64-sbuild")
	j, warns, err := c.Jail(ch)
	if err != nil || len(warns) != 0 {
		t.Fatal(err, warns)
	}
	if j.Type != "ephemeral" || j.Directory != "/srv/chroot/sid-amd64-sbuild" || !slices.Equal(j.Mounts, []string{"proc", "dev", "sys"}) ||
		!reflect.DeepEqual(j.Binds, []Bind{{Source: "/var/lib/sbuild/build", Target: "/build"}}) ||
		!slices.Equal(j.CopyFiles, []string{"/etc/resolv.conf"}) || !slices.Equal(j.RootGroups, []string{"root", "sbuild"}) || j.OverlayDir != "" {
		t.Errorf("jail = %+v", j)
	}
	_, src, _ := c.Find("", "source:sid-amd64-sbuild")
	sj, _, err := c.Jail(src)
	if err != nil || sj.Type != "persistent" || len(sj.RootGroups) != 0 || len(sj.Aliases) != 0 {
		t.Errorf("source jail = %+v, %v", sj, err)
	}

	// A profile of the configuration folder wins over the built-in one;
	// unsupported lines are skipped with a warning.
	write(t, filepath.Join(dir, "sbuild/fstab"), "/proc /proc none rw,bind 0 0\n/srv/cache /var/cache/apt/archives none ro,bind 0 0\nserver:/x /nfs nfs defaults 0 0\n/tmp /tmp none rw,bind 0 0\n")
	write(t, filepath.Join(dir, "sbuild/nssdatabases"), "passwd\nshadow\nservices\n")
	j, warns, err = c.Jail(ch)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(j.Mounts, []string{"proc", "dev", "tmp"}) || !reflect.DeepEqual(j.Binds, []Bind{{Source: "/srv/cache", Target: "/var/cache/apt/archives", ReadOnly: true}}) ||
		!slices.Equal(j.CopyFiles, []string{"/etc/resolv.conf", "/etc/services"}) {
		t.Errorf("jail = %+v", j)
	}
	if len(warns) != 1 || !strings.Contains(warns[0].Error(), "mount of server:/x on /nfs (type nfs) is not supported by jailmgr") {
		t.Errorf("warnings = %v", warns)
	}

	// An fstab named but missing is an error, as it stops schroot's setup.
	os.Remove(filepath.Join(dir, "sbuild/fstab"))
	ch.UserData["setup.fstab"] = "custom/fstab"
	if _, _, err := c.Jail(ch); err == nil || !strings.Contains(err.Error(), "custom/fstab") {
		t.Errorf("missing fstab: %v", err)
	}
}

func TestSchrootFileAndPlainJails(t *testing.T) {
	c := loadFixture(t)
	_, tb, _ := c.Find("", "tb")
	j, _, err := c.Jail(tb)
	if err != nil || j.Tarball != "/srv/chroot/tarball.tar.gz" || j.Type != "ephemeral" || j.Repack ||
		!slices.Contains(j.Mounts, "tmp") || !reflect.DeepEqual(j.Binds, []Bind{{Source: "/home", Target: "/home"}}) {
		t.Errorf("file jail = %+v, %v", j, err)
	}
	_, src, _ := c.Find("", "source:tarball")
	if j, _, err := c.Jail(src); err != nil || !j.Repack || j.Type != "persistent" {
		t.Errorf("file source jail = %+v, %v", j, err)
	}
	_, p, _ := c.Find("", "plain-host")
	if j, _, err := c.Jail(p); err != nil || j.Directory != "/srv/chroot/plain" || !slices.Equal(j.Mounts, []string{"proc", "dev"}) || len(j.CopyFiles) != 0 {
		t.Errorf("plain jail = %+v, %v", j, err)
	}
	_, b, _ := c.Find("", "bookworm")
	if j, _, err := c.Jail(b); err != nil || j.Personality != "linux32" || j.Environment != "preserve" || j.Shell != "/bin/bash" {
		t.Errorf("bookworm jail = %+v, %v", j, err)
	}
}

func TestCloneSession(t *testing.T) {
	c := loadFixture(t)
	_, ch, _ := c.Find("", "sid")
	s := ch.CloneSession("sid-amd64-sbuild-1234", "chroot:sid", "alice", false, "/run/jailmgr/sessions/x/root")
	if s.Name != "sid-amd64-sbuild-1234" || s.Description != "Debian sid/amd64 autobuilder (session chroot)" ||
		!slices.Equal(s.Users, []string{"alice"}) || len(s.RootUsers)+len(s.Groups)+len(s.RootGroups)+len(s.Aliases) != 0 ||
		s.Session.OriginalName != "sid-amd64-sbuild" || s.Session.SelectedName != "sid" || !s.SessionPurged() || s.SessionClonable() ||
		s.UnionOverlayDirectory != DefaultUnionOverlayDirectory+"/sid-amd64-sbuild-1234" || s.Path() != "/run/jailmgr/sessions/x/root" {
		t.Errorf("session = %+v %+v", s, s.Session)
	}
	if len(ch.Aliases) != 2 || ch.Session != nil {
		t.Errorf("the chroot changed with its session: %+v", ch)
	}
}
