package bootstrap

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"jailmgr/debian/archivetest"
	"jailmgr/debian/release"
	"jailmgr/session"
	"jailmgr/store"
	"jailmgr/store/tree"
)

// pocketServers serves a Debian-like archive: the release and its updates
// pocket on one server (the main mirror), the security pocket on another
// (the security mirror), all signed with one key. Each of release,
// updates and security lists the packages of that suite.
func pocketServers(t *testing.T, rel, upd, sec []archivetest.Package, setup func(rel, upd, sec *archivetest.Archive)) (main, security *archivetest.Server) {
	t.Helper()
	r := &archivetest.Archive{Suite: "bookworm", Codename: "bookworm", Packages: rel}
	u := &archivetest.Archive{Suite: "bookworm-updates", Codename: "bookworm-updates", Packages: upd}
	s := &archivetest.Archive{Suite: "bookworm-security", Codename: "bookworm-security", Packages: sec}
	if setup != nil {
		setup(r, u, s)
	}
	main = archivetest.ServeSuites(t, r, u)
	s.Signer = main.Signer
	security = archivetest.Serve(t, s)
	return main, security
}

// pocketOptions reads every pocket, the security one from sec. The host's
// apt sources are left out: they would name real mirrors.
func pocketOptions(t *testing.T, main, sec *archivetest.Server) Options {
	o := options(main)
	o.Pockets = nil
	o.SecurityMirror = sec.URL
	o.AptDir = t.TempDir()
	return o
}

func TestPocketNames(t *testing.T) {
	for _, c := range []struct {
		pockets []string
		want    []string // in the error
	}{
		{[]string{"release", "backports"}, []string{`"backports"`, "release, updates, security"}},
		{[]string{"updates", "security"}, []string{"release pocket is required"}},
		{[]string{}, []string{"release pocket is required"}},
	} {
		o := Options{Suite: "bookworm", Pockets: c.pockets, Mirror: "http://127.0.0.1:1/debian"}
		_, err := MakePlan(&o)
		if !errors.Is(err, ErrUsage) {
			t.Errorf("--pockets %q: err = %v, want ErrUsage", c.pockets, err)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("--pockets %q: error %q does not say %q", c.pockets, err, w)
			}
		}
	}
	// sid has no pockets but the release.
	o := Options{Suite: "sid", Pockets: []string{"release", "updates"}, Mirror: "http://127.0.0.1:1/debian", KeyringDir: t.TempDir(), Keyring: writeFile(t, "k", "")}
	if _, err := MakePlan(&o); !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), "sid has no updates pocket") {
		t.Errorf("sid --pockets release,updates: err = %v, want ErrUsage naming the missing pocket", err)
	}
	suites, err := Suites()
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range suites {
		want := "updates security"
		if name == "sid" || name == "forky" { // unstable and testing
			want = ""
		}
		if got := strings.Join(s.Pockets, " "); got != want {
			t.Errorf("suites.ini [%s] pockets = %q, want %q", name, got, want)
		}
	}
}

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSecurityMirrorSources(t *testing.T) {
	keyring := writeFile(t, "keyring.gpg", "")
	plan := func(o Options) (*Plan, error) {
		o.Keyring = keyring
		if o.AptDir == "" {
			o.AptDir = t.TempDir()
		}
		return MakePlan(&o)
	}
	security := func(p *Plan) Pocket {
		for _, pk := range p.Pockets {
			if pk.Name == PocketSecurity {
				return pk
			}
		}
		return Pocket{}
	}

	// A Debian suite with no security mirror anywhere: a clear error that
	// says what to pass, before anything is fetched.
	srv := archivetest.Serve(t, tinyArchive())
	_, err := plan(Options{Suite: "bookworm", Mirror: srv.URL})
	if !errors.Is(err, ErrNoSecurityMirror) || !strings.Contains(err.Error(), "--security-mirror URL") ||
		!strings.Contains(err.Error(), "--pockets release,updates") || !strings.Contains(err.Error(), "security-mirror.debian") {
		t.Errorf("no security mirror: err = %v, want ErrNoSecurityMirror naming --security-mirror, security-mirror.debian and --pockets release,updates", err)
	}
	if n := srv.BytesServed(); n != 0 {
		t.Errorf("the plan that failed fetched %d bytes", n)
	}
	// Without the security pocket none is needed.
	if p, err := plan(Options{Suite: "bookworm", Mirror: srv.URL, Pockets: []string{"release", "updates"}}); err != nil || len(p.Pockets) != 2 {
		t.Errorf("--pockets release,updates: %v, %+v", err, p)
	}

	// The host's apt sources: the entry of the suite's own security pocket
	// wins over another release's, and other distributions are ignored.
	apt := t.TempDir()
	os.MkdirAll(filepath.Join(apt, "sources.list.d"), 0o755)
	os.WriteFile(filepath.Join(apt, "sources.list"), []byte("deb http://old.invalid/debian-security bullseye-security main\ndeb http://ubuntu.invalid/ubuntu jammy-security main\n"), 0o644)
	os.WriteFile(filepath.Join(apt, "sources.list.d", "debian.sources"), []byte("Types: deb\nURIs: http://deb.invalid/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\nTypes: deb\nURIs: http://sec.invalid/debian-security/\nSuites: bookworm-security\nComponents: main\n"), 0o644)
	p, err := plan(Options{Suite: "bookworm", Mirror: srv.URL, AptDir: apt})
	if err != nil {
		t.Fatal(err)
	}
	want := []Pocket{
		{PocketRelease, "bookworm", srv.URL, "--mirror"},
		{PocketUpdates, "bookworm-updates", srv.URL, "--mirror"},
		{PocketSecurity, "bookworm-security", "http://sec.invalid/debian-security", filepath.Join(apt, "sources.list.d", "debian.sources")},
	}
	if len(p.Pockets) != len(want) {
		t.Fatalf("pockets = %+v, want %+v", p.Pockets, want)
	}
	for i := range want {
		if p.Pockets[i] != want[i] {
			t.Errorf("pocket %d = %+v, want %+v", i, p.Pockets[i], want[i])
		}
	}
	// Any security pocket of the distribution when the suite's is absent.
	os.Remove(filepath.Join(apt, "sources.list.d", "debian.sources"))
	if p, err := plan(Options{Suite: "trixie", Mirror: srv.URL, AptDir: apt}); err != nil || security(p).Mirror != "http://old.invalid/debian-security" {
		t.Errorf("trixie with a bullseye-security entry: %v, %+v", err, security(p))
	}

	// The config, then the flag, come first.
	cfg := map[string]string{"debian": "http://config.invalid/debian-security"}
	if p, err := plan(Options{Suite: "bookworm", Mirror: srv.URL, AptDir: apt, ConfigSecurityMirrors: cfg}); err != nil || security(p) != (Pocket{PocketSecurity, "bookworm-security", cfg["debian"], "config security-mirror.debian"}) {
		t.Errorf("config: %v, %+v", err, security(p))
	}
	if p, err := plan(Options{Suite: "bookworm", Mirror: srv.URL, AptDir: apt, ConfigSecurityMirrors: cfg, SecurityMirror: "http://flag.invalid/s"}); err != nil || security(p).Mirror != "http://flag.invalid/s" || security(p).MirrorFrom != "--security-mirror" {
		t.Errorf("--security-mirror: %v, %+v", err, security(p))
	}
	if _, err := plan(Options{Suite: "bookworm", Mirror: srv.URL, SecurityMirror: "ftp://x.invalid/"}); !errors.Is(err, ErrUsage) {
		t.Errorf("--security-mirror ftp://: err = %v, want ErrUsage", err)
	}

	// Ubuntu: the host's jammy-security entry for jammy; for noble, none
	// of its own, but jammy's names the right archive; with no entry at
	// all, the release mirror, which carries SUITE-security itself.
	if p, err := plan(Options{Suite: "noble", Mirror: "http://127.0.0.1:1/ubuntu", AptDir: apt}); err != nil || security(p).Mirror != "http://ubuntu.invalid/ubuntu" {
		t.Errorf("noble with a jammy-security entry: %v, %+v", err, security(p))
	}
	p, err = plan(Options{Suite: "focal", Mirror: "http://127.0.0.1:1/ubuntu"})
	if err != nil || security(p).Mirror != "http://127.0.0.1:1/ubuntu" || security(p).Suite != "focal-security" || !strings.Contains(security(p).MirrorFrom, "release mirror") {
		t.Errorf("focal without a security source: %v, %+v", err, security(p))
	}
	// The suite without pockets reads the release only.
	if p, err := plan(Options{Suite: "sid", Mirror: srv.URL}); err != nil || len(p.Pockets) != 1 {
		t.Errorf("sid: %v, %+v", err, p)
	}
}

// TestPocketIndex reads the three pockets of a two-mirror archive: the
// newest version of each package wins, whichever pocket has it, and is
// fetched from its pocket's mirror; a dependency only the updates pocket
// satisfies resolves; with the release alone it does not.
func TestPocketIndex(t *testing.T) {
	file := func(p string) []archivetest.File { return []archivetest.File{{Path: p, Data: []byte(p)}} }
	rel := []archivetest.Package{
		{Name: "base", Version: "1", Priority: "required", Depends: "libdep (>= 2)", Files: file("/usr/share/base")},
		{Name: "libdep", Version: "1", Priority: "optional", Files: file("/usr/lib/libdep")},
		{Name: "upd", Version: "1.0-1", Priority: "required", Files: file("/usr/share/upd")},
		{Name: "sec", Version: "1.0-1", Priority: "required", Files: file("/usr/share/sec")},
	}
	upd := []archivetest.Package{
		{Name: "libdep", Version: "2", Priority: "optional", Files: file("/usr/lib/libdep")},
		{Name: "upd", Version: "1.0-2", Priority: "required", Files: file("/usr/share/upd")},
	}
	sec := []archivetest.Package{
		{Name: "sec", Version: "1.0-1+deb12u1", Priority: "required", Files: file("/usr/share/sec")},
	}
	main, security := pocketServers(t, rel, upd, sec, nil)
	o := pocketOptions(t, main, security)
	var log bytes.Buffer
	o.Log = &log
	p, err := MakePlan(&o)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := fetchIndex(context.Background(), &o, p, indexCache{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, version, mirror string }{
		{"upd", "1.0-2", main.URL}, {"sec", "1.0-1+deb12u1", security.URL}, {"libdep", "2", main.URL}, {"base", "1", main.URL},
	} {
		got := idx.Packages[c.name][0]
		if got.Version != c.version || got.Mirror != c.mirror {
			t.Errorf("%s: newest is %s from %s, want %s from %s", c.name, got.Version, got.Mirror, c.version, c.mirror)
		}
	}
	if len(idx.Pockets) != 3 || idx.Pockets[2].Suite != "bookworm-security" || idx.Pockets[2].Mirror != security.URL || idx.Pockets[0].InReleaseSHA256 != idx.InReleaseSHA256 {
		t.Errorf("index pockets = %+v", idx.Pockets)
	}
	for i, pk := range idx.Pockets {
		srv := main
		if i == 2 {
			srv = security
		}
		data, _ := srv.File("dists/" + pk.Suite + "/InRelease")
		if pk.InReleaseSHA256 != sha256hex(data) {
			t.Errorf("pocket %s: InRelease SHA256 %s, want that of the served file", pk.Suite, pk.InReleaseSHA256)
		}
	}
	sel, err := Select(idx, p.Suite, o.Variant, nil, nil)
	if err != nil {
		t.Fatalf("select over all pockets: %v", err)
	}
	got := map[string]string{}
	for _, c := range sel.All() {
		got[c.Name] = c.Version
	}
	if got["libdep"] != "2" || got["upd"] != "1.0-2" || got["sec"] != "1.0-1+deb12u1" {
		t.Errorf("selected %v", got)
	}
	// The plan line names every pocket's mirror and where it came from.
	if line := p.pocketsLine(); !strings.Contains(line, "bookworm-updates from "+main.URL+" (--mirror)") || !strings.Contains(line, "bookworm-security from "+security.URL+" (--security-mirror)") {
		t.Errorf("plan line = %q", line)
	}

	// From the release alone, base's dependency is not met.
	o.Pockets = []string{PocketRelease}
	p, err = MakePlan(&o)
	if err != nil {
		t.Fatal(err)
	}
	idx, err = fetchIndex(context.Background(), &o, p, indexCache{})
	if err != nil {
		t.Fatal(err)
	}
	if len(idx.Pockets) != 1 || idx.Packages["upd"][0].Version != "1.0-1" {
		t.Errorf("release only: pockets %+v, upd %s", idx.Pockets, idx.Packages["upd"][0].Version)
	}
	if _, err := Select(idx, p.Suite, o.Variant, nil, nil); !errors.Is(err, ErrSelect) {
		t.Errorf("release only: select err = %v, want ErrSelect (libdep 1 does not meet >= 2)", err)
	}
}

// TestPocketTamperAndExpiry: a security index that does not match its
// signed Release is refused; an expired Release fails with a hint, and
// with IgnoreValidUntil is accepted with a log line.
func TestPocketTamperAndExpiry(t *testing.T) {
	pkgs := tinyArchive().Packages
	secPkg := []archivetest.Package{{Name: "libfoo", Version: "1.2+deb12u1", Files: []archivetest.File{{Path: "/usr/lib/libfoo", Data: []byte("fixed")}}}}

	t.Run("tampered security index", func(t *testing.T) {
		main, security := pocketServers(t, pkgs, nil, secPkg, nil)
		for _, f := range []string{"Packages.xz", "Packages.gz", "Packages"} {
			security.Tamper("dists/bookworm-security/main/binary-"+hostArch()+"/"+f, func(b []byte) []byte {
				c := bytes.Clone(b)
				c[len(c)/2] ^= 0xff
				return c
			})
		}
		st := openStore(t)
		_, err := runBootstrap(t, pocketOptions(t, main, security), st)
		var he *HashError
		if !errors.As(err, &he) || !strings.Contains(he.File, "dists/bookworm-security/") {
			t.Fatalf("err = %v, want a HashError naming the security pocket's index", err)
		}
		assertNothingLeft(t, st)
	})

	t.Run("expired security Release", func(t *testing.T) {
		main, security := pocketServers(t, pkgs, nil, secPkg, func(_, _, s *archivetest.Archive) {
			s.Date = time.Now().Add(-30 * 24 * time.Hour)
			s.ValidUntil = time.Now().Add(-24 * time.Hour)
		})
		st := openStore(t)
		o := pocketOptions(t, main, security)
		_, err := runBootstrap(t, o, st)
		if !errors.Is(err, release.ErrExpired) || !strings.Contains(err.Error(), "--ignore-valid-until") || !strings.Contains(err.Error(), "bookworm-security") {
			t.Fatalf("err = %v, want ErrExpired naming the pocket and --ignore-valid-until", err)
		}
		assertNothingLeft(t, st)

		o.IgnoreValidUntil = true
		var log bytes.Buffer
		o.Log = &log
		p, err := MakePlan(&o)
		if err != nil {
			t.Fatal(err)
		}
		idx, err := fetchIndex(context.Background(), &o, p, indexCache{})
		if err != nil {
			t.Fatalf("with IgnoreValidUntil: %v", err)
		}
		if idx.Packages["libfoo"][0].Version != "1.2+deb12u1" {
			t.Errorf("libfoo = %s, want the security pocket's", idx.Packages["libfoo"][0].Version)
		}
		if !strings.Contains(log.String(), "bookworm-security") || !strings.Contains(log.String(), "--ignore-valid-until") {
			t.Errorf("no log line says the expired Release was accepted:\n%s", log.String())
		}
		// The signature is still checked.
		security.Tamper("dists/bookworm-security/InRelease", func(b []byte) []byte {
			return bytes.Replace(b, []byte("Suite: bookworm-security"), []byte("Suite: bookworm-securitx"), 1)
		})
		if _, err := fetchIndex(context.Background(), &o, p, indexCache{}); !errors.Is(err, release.ErrBadSignature) {
			t.Errorf("tampered InRelease with IgnoreValidUntil: err = %v, want ErrBadSignature", err)
		}
	})
}

// TestPrepareEtcPockets: sources.list names every pocket on its mirror;
// IgnoreValidUntil leaves apt a setting to match.
func TestPrepareEtcPockets(t *testing.T) {
	suite, err := LookupSuite("bookworm")
	if err != nil {
		t.Fatal(err)
	}
	p := &Plan{Suite: suite, Mirror: "http://m.invalid/debian", Components: []string{"main", "contrib"}, MergedUsr: true, Pockets: []Pocket{
		{PocketRelease, "bookworm", "http://m.invalid/debian", "--mirror"},
		{PocketUpdates, "bookworm-updates", "http://m.invalid/debian", "--mirror"},
		{PocketSecurity, "bookworm-security", "http://s.invalid/debian-security", "--security-mirror"},
	}}
	for _, ignore := range []bool{false, true} {
		dir := t.TempDir()
		os.MkdirAll(filepath.Join(dir, "etc/apt/apt.conf.d"), 0o755)
		root, err := tree.OpenRoot(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer root.Close()
		o := &Options{Suite: "bookworm", IgnoreValidUntil: ignore}
		if err := prepareEtc(root, o, p); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(filepath.Join(dir, "etc/apt/sources.list"))
		want := "deb http://m.invalid/debian bookworm main contrib\ndeb http://m.invalid/debian bookworm-updates main contrib\ndeb http://s.invalid/debian-security bookworm-security main contrib\n"
		if string(got) != want {
			t.Errorf("sources.list =\n%s\nwant\n%s", got, want)
		}
		conf, err := os.ReadFile(filepath.Join(dir, validUntilConf))
		if ignore && (err != nil || !strings.Contains(string(conf), `Acquire::Check-Valid-Until "false";`)) {
			t.Errorf("IgnoreValidUntil: %s = %q, %v", validUntilConf, conf, err)
		}
		if !ignore && err == nil {
			t.Errorf("without IgnoreValidUntil, %s was written", validUntilConf)
		}
	}
}

// TestAptListName checks the names apt gives its list files, as seen in
// /var/lib/apt/lists of real systems.
func TestAptListName(t *testing.T) {
	for uri, want := range map[string]string{
		"http://deb.example.org/debian/dists/bookworm-updates/InRelease":   "deb.example.org_debian_dists_bookworm-updates_InRelease",
		"http://127.0.0.1:39123/dists/bookworm/InRelease":                  "127.0.0.1:39123_dists_bookworm_InRelease",
		"https://user:pw@m.example.org/a~b/dists/noble-security/InRelease": "m.example.org_a%7eb_dists_noble-security_InRelease",
	} {
		if got := aptListName(uri); got != want {
			t.Errorf("aptListName(%s) = %s, want %s", uri, got, want)
		}
	}
}

// TestCollectDownloadsPockets: an update records the InRelease apt
// fetched for every pocket of the image, each by its mirror.
func TestCollectDownloadsPockets(t *testing.T) {
	st := openStore(t)
	upper := t.TempDir()
	lists := filepath.Join(upper, "var/lib/apt/lists")
	os.MkdirAll(lists, 0o755)
	from := &store.Manifest{Suite: "bookworm", Mirror: "http://127.0.0.1:8000", InReleaseSHA256: "old-release", Pockets: []store.Pocket{
		{Suite: "bookworm", Mirror: "http://127.0.0.1:8000", InReleaseSHA256: "old-release"},
		{Suite: "bookworm-updates", Mirror: "http://127.0.0.1:8000", InReleaseSHA256: "old-updates"},
		{Suite: "bookworm-security", Mirror: "http://127.0.0.1:8001/debian-security", InReleaseSHA256: "old-security"},
	}}
	// Another mirror's security InRelease for the same suite name must not
	// be taken for the image's.
	for name, data := range map[string]string{
		"127.0.0.1:8000_dists_bookworm_InRelease":                          "release",
		"127.0.0.1:8001_debian-security_dists_bookworm-security_InRelease": "security",
		"other.invalid_dists_bookworm-security_InRelease":                  "other",
	} {
		os.WriteFile(filepath.Join(lists, name), []byte(data), 0o644)
	}
	_, inRelease, pockets, err := collectDownloads(st, upper, from)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{sha256hex([]byte("release")), "old-updates", sha256hex([]byte("security"))}
	if inRelease != want[0] || len(pockets) != 3 {
		t.Fatalf("inRelease %s, pockets %+v", inRelease, pockets)
	}
	for i, pk := range pockets {
		if pk.InReleaseSHA256 != want[i] || pk.Mirror != from.Pockets[i].Mirror {
			t.Errorf("pocket %s: %+v, want InRelease %s", pk.Suite, pk, want[i])
		}
	}
	if from.Pockets[0].InReleaseSHA256 != "old-release" {
		t.Error("collectDownloads changed the old manifest")
	}
	// An image from before pockets were recorded gets its release pocket.
	_, _, pockets, err = collectDownloads(st, upper, &store.Manifest{Suite: "bookworm", Mirror: "http://127.0.0.1:8000", InReleaseSHA256: "x"})
	if err != nil || len(pockets) != 1 || pockets[0].InReleaseSHA256 != want[0] || pockets[0].Suite != "bookworm" {
		t.Errorf("old manifest: %+v, %v", pockets, err)
	}
}

// TestBootstrapPockets builds real images from a two-mirror archive: with
// every pocket, the updates and security versions are installed, the
// image's sources.list names the three pockets on their mirrors and the
// manifest records them; with --pockets release, the release versions and
// a one-line sources.list; from an expired archive with IgnoreValidUntil,
// an image whose apt accepts it too.
func TestBootstrapPockets(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("a full bootstrap chroots and sets file ownership: run as root (CI does)")
	}
	if testing.Short() {
		t.Skip("three bootstraps")
	}
	base := minimalSystem(t)
	file := func(p string) []archivetest.File { return []archivetest.File{{Path: p, Data: []byte(p)}} }
	rel := append(base,
		archivetest.Package{Name: "jm-upd", Version: "1.0-1", Priority: "required", Files: file("/usr/share/jm-upd")},
		archivetest.Package{Name: "jm-sec", Version: "1.0-1", Priority: "required", Files: file("/usr/share/jm-sec")},
	)
	upd := []archivetest.Package{{Name: "jm-upd", Version: "1.0-2", Priority: "required", Files: file("/usr/share/jm-upd")}}
	sec := []archivetest.Package{{Name: "jm-sec", Version: "1.0-1+deb12u1", Priority: "required", Files: file("/usr/share/jm-sec")}}
	main, security := pocketServers(t, rel, upd, sec, nil)
	st := openStore(t)

	o := pocketOptions(t, main, security)
	res, err := runBootstrap(t, o, st)
	if err != nil {
		t.Fatalf("bootstrap: %v\nlog:\n%s", err, o.Log)
	}
	installed := dpkgVersions(t, res.Image.RootFS())
	if installed["jm-upd"] != "1.0-2" || installed["jm-sec"] != "1.0-1+deb12u1" {
		t.Errorf("installed jm-upd %q, jm-sec %q; want the updates and security versions", installed["jm-upd"], installed["jm-sec"])
	}
	sources, _ := os.ReadFile(filepath.Join(res.Image.RootFS(), "etc/apt/sources.list"))
	want := "deb " + main.URL + " bookworm main\ndeb " + main.URL + " bookworm-updates main\ndeb " + security.URL + " bookworm-security main\n"
	if string(sources) != want {
		t.Errorf("sources.list =\n%s\nwant\n%s", sources, want)
	}
	m := res.Image.Manifest
	if len(m.Pockets) != 3 || m.Pockets[1].Suite != "bookworm-updates" || m.Pockets[2].Mirror != security.URL || m.Pockets[0].InReleaseSHA256 != m.InReleaseSHA256 || m.Mirror != main.URL {
		t.Errorf("manifest pockets = %+v (mirror %s, InRelease %s)", m.Pockets, m.Mirror, m.InReleaseSHA256)
	}
	if data, _ := security.File("dists/bookworm-security/InRelease"); m.Pockets[2].InReleaseSHA256 != sha256hex(data) {
		t.Errorf("manifest: security InRelease %s, want that of the served file", m.Pockets[2].InReleaseSHA256)
	}
	if security.Requests(archivetest.PoolPath(sec[0], "")) != 1 || main.Requests(archivetest.PoolPath(sec[0], "")) != 0 {
		t.Error("the security pocket's package was not downloaded from the security mirror")
	}
	if m.IgnoreValidUntil {
		t.Error("manifest says ignore_valid_until without the option")
	}
	if line := firstLine(o.Log.(*bytes.Buffer).String()); !strings.Contains(line, security.URL+" (--security-mirror)") {
		t.Errorf("plan line %q does not name the security mirror", line)
	}

	o = pocketOptions(t, main, security)
	o.Pockets = []string{PocketRelease}
	o.Name = "release-only"
	res, err = runBootstrap(t, o, st)
	if err != nil {
		t.Fatalf("bootstrap --pockets release: %v\nlog:\n%s", err, o.Log)
	}
	installed = dpkgVersions(t, res.Image.RootFS())
	if installed["jm-upd"] != "1.0-1" || installed["jm-sec"] != "1.0-1" {
		t.Errorf("--pockets release: installed jm-upd %q, jm-sec %q; want the release versions", installed["jm-upd"], installed["jm-sec"])
	}
	if sources, _ := os.ReadFile(filepath.Join(res.Image.RootFS(), "etc/apt/sources.list")); string(sources) != "deb "+main.URL+" bookworm main\n" {
		t.Errorf("--pockets release: sources.list =\n%s", sources)
	}
	if len(res.Image.Manifest.Pockets) != 1 {
		t.Errorf("--pockets release: manifest pockets = %+v", res.Image.Manifest.Pockets)
	}

	// A frozen archive: every Release expired.
	expired := archivetest.Serve(t, &archivetest.Archive{Suite: "bookworm", Codename: "bookworm", Packages: rel,
		Date: time.Now().Add(-30 * 24 * time.Hour), ValidUntil: time.Now().Add(-24 * time.Hour)})
	o = options(expired)
	o.Name = "frozen"
	if _, err := runBootstrap(t, o, st); !errors.Is(err, release.ErrExpired) || !strings.Contains(err.Error(), "--ignore-valid-until") {
		t.Fatalf("expired archive: err = %v, want ErrExpired with the hint", err)
	}
	o = options(expired)
	o.Name, o.IgnoreValidUntil = "frozen", true
	res, err = runBootstrap(t, o, st)
	if err != nil {
		t.Fatalf("expired archive with IgnoreValidUntil: %v\nlog:\n%s", err, o.Log)
	}
	conf, err := os.ReadFile(filepath.Join(res.Image.RootFS(), validUntilConf))
	if err != nil || !strings.Contains(string(conf), `Acquire::Check-Valid-Until "false";`) {
		t.Errorf("%s = %q, %v", validUntilConf, conf, err)
	}
	if !res.Image.Manifest.IgnoreValidUntil {
		t.Error("manifest does not record ignore_valid_until")
	}
	if !strings.Contains(o.Log.(*bytes.Buffer).String(), "accepted because of --ignore-valid-until") {
		t.Errorf("no log line says the expired Release was accepted:\n%s", o.Log)
	}
}

// dpkgVersions asks the root's own dpkg what it has installed.
func dpkgVersions(t *testing.T, root string) map[string]string {
	t.Helper()
	cmd, err := session.Chroot(root, "dpkg-query", "-W", "-f", "${Package} ${Version}\n")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg-query in the image: %v\n%s", err, out)
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if name, v, ok := strings.Cut(line, " "); ok {
			got[name] = v
		}
	}
	return got
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// TestHasComponent: Debian's security archive lists its components as
// "updates/main" while serving main/binary-ARCH, as apt accepts.
func TestHasComponent(t *testing.T) {
	for _, c := range []struct {
		listed []string
		comp   string
		want   bool
	}{
		{[]string{"main", "contrib"}, "main", true},
		{[]string{"updates/main", "updates/contrib"}, "main", true},
		{[]string{"updates/main"}, "contrib", false},
		{[]string{"mainly"}, "main", false},
		{nil, "main", true},
	} {
		if got := hasComponent(c.listed, c.comp); got != c.want {
			t.Errorf("hasComponent(%q, %s) = %v, want %v", c.listed, c.comp, got, c.want)
		}
	}
}

// TestUpdatePockets: apt in an image reads the pockets its bootstrap wrote,
// so a security fix published later reaches the next version, whose
// manifest records the InRelease of every pocket; and apt in an image
// built with IgnoreValidUntil accepts the expired archive as the
// bootstrap did.
func TestUpdatePockets(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("bootstraps, chroots and mounts overlays: run as root (CI does)")
	}
	if testing.Short() {
		t.Skip("bootstraps two images with apt")
	}
	base, err := archivetest.MinimalSystem("apt", "perl-base", "sed", "grep", "findutils", "diffutils", "mawk", "debianutils")
	if err != nil {
		t.Skipf("cannot repack the host's apt into a test system: %v", err)
	}
	file := func(p, data string) []archivetest.File { return []archivetest.File{{Path: p, Data: []byte(data)}} }
	rel := append(base, archivetest.Package{Name: "jm-sec", Version: "1.0-1", Priority: "required", Files: file("/usr/share/jm-sec", "1")})
	main, security := pocketServers(t, rel, nil, nil, nil)
	st := openStore(t)
	o := pocketOptions(t, main, security)
	// apt in the image must trust the test archive's key.
	o.CustomizeHooks = []string{"cp " + main.KeyringPath + ` "$1/etc/apt/trusted.gpg.d/jailmgr-test.gpg"`}
	res, err := runBootstrap(t, o, st)
	if err != nil {
		t.Fatalf("bootstrap: %v\nlog:\n%s", err, o.Log)
	}
	v1 := res.Image

	security.Replace(t, &archivetest.Archive{Suite: "bookworm-security", Codename: "bookworm-security",
		Packages: []archivetest.Package{{Name: "jm-sec", Version: "1.0-1+deb12u1", Priority: "required", Files: file("/usr/share/jm-sec", "fixed")}}})
	var log bytes.Buffer
	ures, err := Update(context.Background(), st, UpdateOptions{Ref: v1.Ref(), Log: &log})
	if err != nil {
		t.Fatalf("update: %v\n%s", err, log.String())
	}
	if data, _ := os.ReadFile(filepath.Join(ures.Image.RootFS(), "usr/share/jm-sec")); string(data) != "fixed" {
		t.Errorf("%s holds jm-sec %q, want the security pocket's fix (changes: %q)", ures.Image.Ref(), data, ures.Upgraded)
	}
	m := ures.Image.Manifest
	if len(m.Pockets) != 3 {
		t.Fatalf("updated manifest pockets = %+v", m.Pockets)
	}
	served, _ := security.File("dists/bookworm-security/InRelease")
	if m.Pockets[2].InReleaseSHA256 != sha256hex(served) || m.Pockets[2].InReleaseSHA256 == v1.Manifest.Pockets[2].InReleaseSHA256 {
		t.Errorf("updated manifest: security InRelease %s, want the new one %s (was %s)", m.Pockets[2].InReleaseSHA256, sha256hex(served), v1.Manifest.Pockets[2].InReleaseSHA256)
	}
	if m.Pockets[0].InReleaseSHA256 != v1.Manifest.Pockets[0].InReleaseSHA256 || m.InReleaseSHA256 != m.Pockets[0].InReleaseSHA256 {
		t.Errorf("updated manifest: release InRelease %s (top level %s), want the unchanged %s", m.Pockets[0].InReleaseSHA256, m.InReleaseSHA256, v1.Manifest.Pockets[0].InReleaseSHA256)
	}

	// A frozen archive: apt inside must accept its expired Release too.
	frozen := archivetest.Serve(t, &archivetest.Archive{Suite: "bookworm", Codename: "bookworm", Packages: rel,
		Date: time.Now().Add(-30 * 24 * time.Hour), ValidUntil: time.Now().Add(-24 * time.Hour)})
	o = options(frozen)
	o.Name, o.IgnoreValidUntil = "frozen", true
	o.CustomizeHooks = []string{"cp " + frozen.KeyringPath + ` "$1/etc/apt/trusted.gpg.d/jailmgr-test.gpg"`}
	res, err = runBootstrap(t, o, st)
	if err != nil {
		t.Fatalf("bootstrap of the frozen archive: %v\nlog:\n%s", err, o.Log)
	}
	log.Reset()
	if _, err := Update(context.Background(), st, UpdateOptions{Ref: res.Image.Ref(), Log: &log}); err != nil {
		t.Errorf("update of %s from its expired archive: %v\n%s", res.Image.Ref(), err, log.String())
	}
}
