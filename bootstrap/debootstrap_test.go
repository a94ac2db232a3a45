package bootstrap

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The fixture is the head of debootstrap's gutsy script (to which every
// newer Ubuntu suite links), its mirrors replaced by mirror.invalid ones.
const (
	fixtureOld     = "http://old-releases.mirror.invalid/ubuntu"
	fixtureArchive = "http://archive.mirror.invalid/ubuntu"
	fixturePorts   = "http://ports.mirror.invalid/ubuntu-ports"
)

func readFixture(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "debootstrap", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestScriptMirror(t *testing.T) {
	gutsy := readFixture(t, "gutsy")
	for _, c := range []struct{ arch, suite, want string }{
		{"amd64", "focal", fixtureArchive},
		{"i386", "noble", fixtureArchive},
		{"amd64", "hardy", fixtureOld},
		{"arm64", "focal", fixturePorts},
		{"riscv64", "noble", fixturePorts},
		{"sparc", "gutsy", fixtureOld},
		{"sparc", "focal", fixturePorts},
	} {
		got, err := scriptMirror(strings.NewReader(gutsy), "gutsy", c.arch, c.suite)
		if err != nil {
			t.Fatalf("%s %s: %v", c.arch, c.suite, err)
		}
		if got.Mirror != c.want || got.Keyring != "/usr/share/keyrings/ubuntu-archive-keyring.gpg" {
			t.Errorf("%s %s: mirror %q, keyring %q; want %q and the ubuntu keyring", c.arch, c.suite, got.Mirror, got.Keyring, c.want)
		}
	}
}

func TestScriptMirrorShapes(t *testing.T) {
	for _, c := range []struct{ name, script, want string }{
		{"top level", "default_mirror http://a.mirror.invalid/x\n", "http://a.mirror.invalid/x"},
		{"quoted word and pattern", "case \"${ARCH}\" in\n  'amd64') default_mirror http://a.mirror.invalid ;;\n  *) default_mirror http://b.mirror.invalid ;;\nesac\n", "http://a.mirror.invalid"},
		{"glob", "case $ARCH in\n amd6?|arm*)\n default_mirror http://a.mirror.invalid\n ;;\nesac\n", "http://a.mirror.invalid"},
		{"first match only", "case $ARCH in\n amd64) default_mirror http://a.mirror.invalid ;;\n amd64|*) default_mirror http://b.mirror.invalid ;;\nesac\n", "http://a.mirror.invalid"},
		{"other variable takes *", "case $MIRRORS in\n amd64) default_mirror http://a.mirror.invalid ;;\n *) default_mirror http://b.mirror.invalid ;;\nesac\n", "http://b.mirror.invalid"},
		{"inner case of a branch not taken", "case $ARCH in\n s390x)\n case $SUITE in\n *) default_mirror http://a.mirror.invalid ;;\n esac\n ;;\nesac\n", ""},
		{"last branch without ;;", "case $SUITE in\n noble)\n default_mirror http://a.mirror.invalid\nesac\n", "http://a.mirror.invalid"},
		{"none", "mirror_style release\n", ""},
	} {
		got, err := scriptMirror(strings.NewReader(c.script), c.name, "amd64", "noble")
		if err != nil || got.Mirror != c.want {
			t.Errorf("%s: mirror %q, %v; want %q", c.name, got.Mirror, err, c.want)
		}
	}
	for _, bad := range []string{"case $ARCH in\n amd64)\n", "esac\n", "foo ;;\n", "case $ARCH in\nnot a pattern\nesac\n"} {
		if _, err := scriptMirror(strings.NewReader(bad), "bad", "amd64", "noble"); err == nil || !strings.Contains(err.Error(), "read bad") {
			t.Errorf("%q: err = %v, want an error naming the script", bad, err)
		}
	}
}

// TestScriptMirrorHostScripts reads the host's own debootstrap scripts,
// when debootstrap is installed: every one parses, and gutsy's answers
// differ by architecture and age as its case statements say.
func TestScriptMirrorHostScripts(t *testing.T) {
	const dir = "/usr/share/debootstrap/scripts"
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Skipf("debootstrap is not installed: %v", err)
	}
	for _, e := range ents {
		if _, err := readScript(filepath.Join(dir, e.Name()), "amd64", e.Name()); err != nil {
			t.Errorf("%s: %v", e.Name(), err)
		}
	}
	gutsy := filepath.Join(dir, "gutsy")
	if _, err := os.Stat(gutsy); err != nil {
		t.Skip("no gutsy script")
	}
	amd64, _ := readScript(gutsy, "amd64", "noble")
	arm64, _ := readScript(gutsy, "arm64", "noble")
	old, _ := readScript(gutsy, "amd64", "hardy")
	if amd64.Mirror == "" || arm64.Mirror == "" || old.Mirror == "" || amd64.Mirror == arm64.Mirror || amd64.Mirror == old.Mirror {
		t.Errorf("gutsy: amd64 noble %q, arm64 noble %q, amd64 hardy %q; want three different mirrors", amd64.Mirror, arm64.Mirror, old.Mirror)
	}
}

// debootstrapDir lays out a scripts folder as debootstrap ships it: Ubuntu
// suites link to gutsy, Debian ones to sid (which names no mirror: the
// debootstrap program has Debian's), an old Debian script names an
// archive of old releases, and another distribution's script has a
// mirror of its own.
func debootstrapDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := func(name, target string) {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	write("gutsy", readFixture(t, "gutsy"))
	link("focal", "gutsy")
	link("groovy", "gutsy")
	link("hirsute", "groovy") // a chain, as upstream has
	write("sid", "mirror_style release\nkeyring /usr/share/keyrings/debian-archive-keyring.gpg\n")
	for _, n := range []string{"bullseye", "bookworm", "trixie", "stable", "testing", "unstable"} {
		link(n, "sid")
	}
	write("etch", "default_mirror http://old.mirror.invalid/debian\nkeyring /usr/share/keyrings/debian-archive-removed-keys.gpg\n")
	write("potato", "default_mirror http://old.mirror.invalid/debian\nkeyring /usr/share/keyrings/debian-archive-keyring.gpg\n")
	write("kali", "default_mirror http://other.mirror.invalid/kali\nkeyring /usr/share/keyrings/kali-archive-keyring.gpg\n")
	for _, n := range []string{"kali-dev", "kali-rolling", "kali-last-snapshot", "kali-experimental", "kali-bleeding-edge"} {
		link(n, "kali")
	}
	return dir
}

func TestDebootstrapMirror(t *testing.T) {
	dir := debootstrapDir(t)
	suites, err := Suites()
	if err != nil {
		t.Fatal(err)
	}
	debian := *suites["bookworm"]
	forky := debian
	forky.Name = "forky"
	oracular := *suites["noble"]
	oracular.Name = "oracular"
	for _, c := range []struct {
		suite              *Suite
		arch               string
		want, fromContains string
	}{
		{suites["focal"], "amd64", fixtureArchive, filepath.Join(dir, "gutsy")},
		{suites["focal"], "arm64", fixturePorts, filepath.Join(dir, "gutsy")},
		// noble is newer than this debootstrap: gutsy, which most Ubuntu
		// names link to, stands in (kali's has more links, another keyring).
		{suites["noble"], "amd64", fixtureArchive, "gutsy, as it has none for noble"},
		{&oracular, "arm64", fixturePorts, "gutsy, as it has none for oracular"},
		// sid names no mirror, and an older Debian script is no stand-in.
		{suites["bookworm"], "amd64", "", ""},
		{&forky, "amd64", "", ""},
	} {
		got, from, err := debootstrapMirror(dir, c.suite, c.arch)
		if err != nil || got != c.want || !strings.Contains(from, c.fromContains) {
			t.Errorf("%s %s: %q from %q, %v; want %q from a script named %q", c.suite.Name, c.arch, got, from, err, c.want, c.fromContains)
		}
	}
	if _, _, err := debootstrapMirror(filepath.Join(dir, "none"), suites["focal"], "amd64"); !errors.Is(err, errNoDebootstrap) {
		t.Errorf("no debootstrap: err = %v, want errNoDebootstrap", err)
	}
}

// TestPlanMirrorOrder checks where the mirror comes from, first to last:
// --mirror, the config, the host's apt sources, debootstrap's script.
func TestPlanMirrorOrder(t *testing.T) {
	apt := t.TempDir()
	os.MkdirAll(filepath.Join(apt, "sources.list.d"), 0o755)
	os.WriteFile(filepath.Join(apt, "sources.list.d", "ubuntu.list"), []byte("deb http://apt.mirror.invalid/ubuntu jammy main\n"), 0o644)
	o := Options{
		Suite: "noble", Arch: hostArch(), Mirror: "http://flag.mirror.invalid/ubuntu/",
		ConfigMirrors: map[string]string{"ubuntu": "http://config.mirror.invalid/ubuntu"},
		AptDir:        apt, DebootstrapDir: debootstrapDir(t),
	}
	if err := o.setDefaults(); err != nil {
		t.Fatal(err)
	}
	suite, err := LookupSuite("noble")
	if err != nil {
		t.Fatal(err)
	}
	want := fixtureArchive
	if o.Arch != "amd64" && o.Arch != "i386" {
		want = fixturePorts
	}
	for _, c := range []struct {
		drop       func()
		want, from string
	}{
		{func() {}, "http://flag.mirror.invalid/ubuntu", "--mirror"},
		{func() { o.Mirror = "" }, "http://config.mirror.invalid/ubuntu", "config mirror.ubuntu"},
		{func() { o.ConfigMirrors = nil }, "http://apt.mirror.invalid/ubuntu", filepath.Join(apt, "sources.list.d", "ubuntu.list")},
		{func() { o.AptDir = t.TempDir() }, want, "debootstrap's script " + filepath.Join(o.DebootstrapDir, "gutsy") + ", as it has none for noble"},
	} {
		c.drop()
		got, from, err := planMirror(&o, suite)
		if err != nil || got != c.want || from != c.from {
			t.Errorf("mirror = %q from %q, %v; want %q from %q", got, from, err, c.want, c.from)
		}
	}
}

// TestUbuntuOnDebianHost plans focal as on a Debian host with debootstrap
// and without an Ubuntu mirror anywhere else: the plan names the script.
func TestUbuntuOnDebianHost(t *testing.T) {
	keyring := filepath.Join(t.TempDir(), "ubuntu-archive-keyring.gpg")
	os.WriteFile(keyring, []byte("key"), 0o644)
	o := Options{Suite: "focal", Arch: "amd64", AptDir: t.TempDir(), DebootstrapDir: debootstrapDir(t), Keyring: keyring}
	if hostArch() != "amd64" {
		o.Arch = hostArch()
	}
	p, err := MakePlan(&o)
	if err != nil {
		t.Fatal(err)
	}
	if (p.Mirror != fixtureArchive && p.Mirror != fixturePorts) || p.MirrorFrom != "debootstrap's script "+filepath.Join(o.DebootstrapDir, "gutsy") {
		t.Errorf("plan: mirror %q from %q; want gutsy's", p.Mirror, p.MirrorFrom)
	}
}

func TestNoMirrorError(t *testing.T) {
	for _, c := range []struct {
		debootstrap string
		says        string
	}{
		{filepath.Join(t.TempDir(), "none"), "debootstrap, whose scripts name one, is not installed"},
		{t.TempDir(), "in the host's apt sources or debootstrap's scripts"},
	} {
		o := Options{Suite: "focal", AptDir: t.TempDir(), DebootstrapDir: c.debootstrap}
		_, err := MakePlan(&o)
		if !errors.Is(err, ErrNoMirror) {
			t.Fatalf("err = %v, want ErrNoMirror", err)
		}
		for _, want := range []string{"focal (a ubuntu suite)", c.says, "pass --mirror URL", "mirror.ubuntu = URL", "/etc/jailmgr.conf"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("err = %q, want it to say %q", err, want)
			}
		}
	}
}

func TestNoKeyringError(t *testing.T) {
	suites, err := Suites()
	if err != nil {
		t.Fatal(err)
	}
	const path = "/usr/share/keyrings/ubuntu-archive-keyring.gpg"
	const mirror = "http://archive.mirror.invalid/ubuntu"
	// On a Debian host, which may have no ubuntu-keyring package, the
	// error spells out the way round through the Ubuntu archive's pool.
	err = noKeyringError(path, suites["focal"], mirror, []string{"debian"})
	for _, want := range []string{
		path + " is missing", "install the ubuntu-keyring package if this host's distribution has it (apt-cache policy ubuntu-keyring)",
		"download ubuntu-keyring_*.deb from " + mirror + "/pool/main/u/ubuntu-keyring/", "dpkg-deb -x FILE DIR",
		"--keyring DIR/usr/share/keyrings/ubuntu-archive-keyring.gpg",
	} {
		if !errors.Is(err, ErrNoKeyring) || !strings.Contains(err.Error(), want) {
			t.Errorf("on debian: err = %q, want ErrNoKeyring saying %q", err, want)
		}
	}
	// On Ubuntu (or a derivative) the package is there to install.
	err = noKeyringError(path, suites["focal"], mirror, []string{"linuxmint", "ubuntu", "debian"})
	if want := "install the ubuntu-keyring package, or pass --keyring FILE"; !errors.Is(err, ErrNoKeyring) || !strings.HasSuffix(err.Error(), want) {
		t.Errorf("on ubuntu: err = %q, want it to end %q", err, want)
	}

	osRelease := filepath.Join(t.TempDir(), "os-release")
	os.WriteFile(osRelease, []byte("PRETTY_NAME=\"Linux Mint 21\"\nID=linuxmint\nID_LIKE=\"ubuntu debian\"\n"), 0o644)
	if got := hostDistributions(osRelease); strings.Join(got, " ") != "linuxmint ubuntu debian" {
		t.Errorf("hostDistributions = %q", got)
	}
	if got := hostDistributions(filepath.Join(t.TempDir(), "none")); got != nil {
		t.Errorf("hostDistributions of no file = %q", got)
	}
}
