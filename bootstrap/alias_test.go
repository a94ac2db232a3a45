package bootstrap

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"

	"jailmgr/debian/archivetest"
	"jailmgr/debian/release"
)

// serveAs serves the files of dists/FROM under dists/TO as well, as an
// archive's suite links do (dists/stable -> bookworm): the same signed
// files under both names.
func serveAs(t *testing.T, srv *archivetest.Server, from, to string) {
	t.Helper()
	data, ok := srv.File("dists/" + from + "/Release")
	if !ok {
		t.Fatalf("no dists/%s/Release", from)
	}
	rel, err := release.Parse(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"InRelease", "Release", "Release.gpg"}
	for f := range rel.Files {
		names = append(names, f)
	}
	for _, n := range names {
		if data, ok := srv.File("dists/" + from + "/" + n); ok {
			srv.Tamper("dists/"+to+"/"+n, func([]byte) []byte { return data })
		}
	}
}

// aliasServer serves the tiny archive as suite and codename, published
// under dists/CODENAME and dists/ALIAS, and options that bootstrap alias.
func aliasServer(t *testing.T, alias, suite, codename string) (*archivetest.Server, Options) {
	t.Helper()
	a := tinyArchive()
	a.Suite, a.Codename = suite, codename
	srv := archivetest.Serve(t, a)
	if codename != "" && codename != suite {
		serveAs(t, srv, suite, codename)
	}
	if alias != suite {
		serveAs(t, srv, suite, alias)
	}
	o := options(srv)
	o.Suite, o.Name = alias, ""
	// The security pocket is on another archive; these tests are about
	// the release.
	o.Pockets = []string{PocketRelease}
	return srv, o
}

func TestAliasResolves(t *testing.T) {
	srv, o := aliasServer(t, "stable", "stable", "bookworm")
	p, err := MakePlan(&o)
	if err != nil {
		t.Fatal(err)
	}
	if o.Suite != "bookworm" || o.Name != "bookworm" || p.Suite.Name != "bookworm" {
		t.Errorf("stable planned as suite %q, name %q, definition %q; want bookworm throughout", o.Suite, o.Name, p.Suite.Name)
	}
	if len(p.Pockets) == 0 || p.Pockets[0].Suite != "bookworm" {
		t.Errorf("pockets = %+v; want the release pocket dists/bookworm", p.Pockets)
	}
	if log := o.Log.(*bytes.Buffer).String(); !strings.Contains(log, "stable is bookworm (from the archive's Release file)\n") {
		t.Errorf("log = %q; want it to say what stable is", log)
	}
	if n := srv.Requests("dists/stable/InRelease"); n != 1 {
		t.Errorf("dists/stable/InRelease fetched %d times, want once", n)
	}

	// --name wins over the codename.
	_, o = aliasServer(t, "stable", "stable", "bookworm")
	o.Name = "mine"
	if _, err := MakePlan(&o); err != nil || o.Suite != "bookworm" || o.Name != "mine" {
		t.Errorf("--name mine: suite %q, name %q, %v; want bookworm named mine", o.Suite, o.Name, err)
	}

	// Ubuntu's devel is the development series, whose file names it both
	// as Suite and as Codename.
	_, o = aliasServer(t, "devel", "noble", "noble")
	if p, err := MakePlan(&o); err != nil || o.Suite != "noble" || p.Suite.Distribution != "ubuntu" {
		t.Errorf("devel: suite %q, %v; want noble", o.Suite, err)
	}

	// A known suite is not looked up in the archive.
	srv, o = aliasServer(t, "bookworm", "bookworm", "bookworm")
	if _, err := MakePlan(&o); err != nil || srv.Requests("dists/bookworm/InRelease") != 0 {
		t.Errorf("bookworm: %v, %d requests; want a plan without any", err, srv.Requests("dists/bookworm/InRelease"))
	}
}

func TestAliasRefused(t *testing.T) {
	cases := []struct {
		name                   string
		alias, suite, codename string
		tamper                 func(*archivetest.Server)
		want                   error
		says                   []string
	}{
		{
			name: "bad signature", alias: "stable", suite: "stable", codename: "bookworm",
			tamper: func(s *archivetest.Server) {
				s.Tamper("dists/stable/InRelease", func(b []byte) []byte {
					return bytes.Replace(b, []byte("Codename: bookworm"), []byte("Codename: bullseye"), 1)
				})
			},
			want: release.ErrBadSignature, says: []string{"dists/stable/InRelease"},
		},
		{
			name: "unknown codename", alias: "testing", suite: "testing", codename: "duke",
			want: ErrUnknownSuite, says: []string{"resolve testing: the archive says it is duke", `"duke"`, "known suites are", "bookworm", "scripts/suites.ini"},
		},
		{
			name: "no codename", alias: "stable", suite: "stable",
			want: ErrAlias, says: []string{"no Codename field"},
		},
		{
			name: "another suite's file", alias: "stable", suite: "oldstable", codename: "bullseye",
			want: ErrAlias, says: []string{`suite "oldstable", codename "bullseye"`},
		},
		{
			name: "another distribution's codename", alias: "stable", suite: "stable", codename: "noble",
			want: ErrAlias, says: []string{"noble, which scripts/suites.ini defines as a ubuntu suite, not debian"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv, o := aliasServer(t, c.alias, c.suite, c.codename)
			if c.tamper != nil {
				c.tamper(srv)
			}
			p, err := MakePlan(&o)
			if !errors.Is(err, c.want) || p != nil {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			for _, s := range c.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("err = %q, want it to say %q", err, s)
				}
			}
			if o.Suite != c.alias {
				t.Errorf("a refused alias still changed the suite to %q", o.Suite)
			}
		})
	}

	// Verified with another key than the archive's: refused too.
	_, o := aliasServer(t, "stable", "stable", "bookworm")
	o.Keyring = archivetest.Serve(t, tinyArchive()).KeyringPath
	if _, err := MakePlan(&o); !errors.Is(err, release.ErrUnknownKey) {
		t.Errorf("another key: err = %v, want ErrUnknownKey", err)
	}
}

// TestAliasBootstrap bootstraps stable from an archive that publishes
// bookworm under both names: the image is bookworm's, read from
// dists/bookworm.
func TestAliasBootstrap(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("a full bootstrap chroots and sets file ownership: run as root (CI does)")
	}
	pkgs := minimalSystem(t)
	srv := archivetest.Serve(t, &archivetest.Archive{Suite: "stable", Codename: "bookworm", Packages: pkgs})
	serveAs(t, srv, "stable", "bookworm")
	o := options(srv)
	o.Suite, o.Name, o.Pockets = "stable", "", []string{PocketRelease}
	res, err := runBootstrap(t, o, openStore(t))
	if err != nil {
		t.Fatalf("bootstrap stable: %v\nlog:\n%s", err, o.Log)
	}
	if res.Image.Ref() != "bookworm:1" || res.Image.Manifest.Suite != "bookworm" {
		t.Errorf("image %s of suite %q; want bookworm:1 of bookworm", res.Image.Ref(), res.Image.Manifest.Suite)
	}
	if srv.Requests("dists/bookworm/InRelease") == 0 {
		t.Errorf("dists/bookworm/InRelease was never read")
	}
}
