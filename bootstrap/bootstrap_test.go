package bootstrap

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"jailmgr/debian/archivetest"
	"jailmgr/debian/release"
	"jailmgr/session"
	"jailmgr/store"
)

// TestMain lets the test binary serve as the chroot helper that
// session.Chroot re-executes.
func TestMain(m *testing.M) {
	session.MaybeRunInit()
	maybeRunChild()
	os.Exit(m.Run())
}

var (
	minimalOnce sync.Once
	minimalPkgs []archivetest.Package
	minimalErr  error
)

// minimalSystem repacks the host's dpkg, dash, coreutils, libc... into
// packages: a small but real system whose maintainer scripts run.
func minimalSystem(t *testing.T) []archivetest.Package {
	t.Helper()
	minimalOnce.Do(func() {
		minimalPkgs, minimalErr = archivetest.MinimalSystem()
		if minimalErr != nil {
			return
		}
		// Maintainer scripts use the rest of the essential tools.
		have := map[string]bool{}
		for _, p := range minimalPkgs {
			have[p.Name] = true
		}
		var more []string
		for _, n := range []string{"sed", "grep", "findutils", "diffutils", "mawk", "debianutils"} {
			if !have[n] {
				more = append(more, n)
			}
		}
		extra, err := archivetest.HostPackages(more...)
		minimalPkgs, minimalErr = append(minimalPkgs, extra...), err
	})
	if minimalErr != nil {
		t.Skipf("cannot repack the host's packages into a test system: %v", minimalErr)
	}
	return append([]archivetest.Package{}, minimalPkgs...)
}

// markerPackage has a conffile and maintainer scripts that leave traces.
func markerPackage() archivetest.Package {
	return archivetest.Package{
		Name: "jailmgr-marker", Version: "1:2.0~rc1-1", Priority: "required", Depends: "dash | virtual-shell",
		Compression: "zst",
		Files: []archivetest.File{
			{Path: "/etc/marker.conf", Data: []byte("setting=1\n")},
			{Path: "/usr/share/marker/data", Data: []byte("payload\n")},
			{Path: "/usr/bin/marker-link", Link: "../share/marker/data"},
		},
		Control: []archivetest.ControlFile{
			{Name: "conffiles", Data: []byte("/etc/marker.conf\n")},
			{Name: "preinst", Data: []byte("#!/bin/sh\nset -e\necho \"preinst $1\" >> /var/lib/marker.log\n")},
			{Name: "postinst", Data: []byte("#!/bin/sh\nset -e\necho \"postinst $1\" >> /var/lib/marker.log\n")},
		},
	}
}

func options(srv *archivetest.Server) Options {
	return Options{
		Suite: "bookworm", Variant: "minbase", Mirror: srv.URL, Keyring: srv.KeyringPath,
		Name: "test", Jobs: 4, Log: &bytes.Buffer{},
		// The test archive serves the release suite alone.
		Pockets: []string{PocketRelease},
	}
}

// runBootstrap plans and runs a bootstrap, as the command line does.
func runBootstrap(t *testing.T, o Options, st *store.Store) (*Result, error) {
	t.Helper()
	p, err := MakePlan(&o)
	if err != nil {
		return nil, err
	}
	return Run(context.Background(), o, p, st)
}

func openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// assertNothingLeft checks that a failed run committed nothing and left
// no staging area and no unverified file in the cache.
func assertNothingLeft(t *testing.T, st *store.Store, cached ...string) {
	t.Helper()
	imgs, err := st.Images()
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 0 {
		t.Errorf("a failed bootstrap committed %d images", len(imgs))
	}
	ents, _ := os.ReadDir(filepath.Join(st.Dir, "staging"))
	for _, e := range ents {
		t.Errorf("staging leftover: %s", e.Name())
	}
	got, _ := os.ReadDir(st.CacheDir())
	allowed := map[string]bool{}
	for _, c := range cached {
		allowed[c+".deb"] = true
	}
	for _, e := range got {
		if !allowed[e.Name()] {
			t.Errorf("cache holds %s, which was not verified", e.Name())
		}
	}
}

func TestBootstrapEndToEnd(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("a full bootstrap chroots and sets file ownership: run as root (CI does)")
	}
	pkgs := append(minimalSystem(t), markerPackage())
	srv := archivetest.Serve(t, &archivetest.Archive{Suite: "bookworm", Codename: "bookworm", Packages: pkgs})
	st := openStore(t)
	o := options(srv)
	o.CustomizeHooks = []string{`echo "$1" > "$1/hooked"`, `test -s "$1/var/lib/dpkg/status"`}
	res, err := runBootstrap(t, o, st)
	if err != nil {
		t.Fatalf("bootstrap: %v\nlog:\n%s", err, o.Log)
	}
	if res.Image.Ref() != "test:1" || res.Downloaded != len(pkgs) {
		t.Errorf("result = %s, downloaded %d; want test:1 with %d downloads", res.Image.Ref(), res.Downloaded, len(pkgs))
	}
	root := res.Image.RootFS()

	// The marker's scripts ran in order, its conffile is in place.
	if log, err := os.ReadFile(filepath.Join(root, "var/lib/marker.log")); err != nil || string(log) != "preinst install\npostinst configure\n" {
		t.Errorf("marker.log = %q, %v; want preinst then postinst", log, err)
	}
	if data, err := os.ReadFile(filepath.Join(root, "etc/marker.conf")); err != nil || string(data) != "setting=1\n" {
		t.Errorf("conffile = %q, %v", data, err)
	}
	if _, err := os.Lstat(filepath.Join(root, "etc/marker.conf.dpkg-new")); err == nil {
		t.Errorf("etc/marker.conf.dpkg-new left behind")
	}
	// The customize hooks ran with the staged root as $1, before commit.
	if data, err := os.ReadFile(filepath.Join(root, "hooked")); err != nil || !strings.Contains(string(data), "/staging/") {
		t.Errorf("customize hook: %q, %v; want the staging root's path", data, err)
	}
	if fi, err := os.Lstat(filepath.Join(root, "bin")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("/bin is not a merged-/usr symlink: %v", err)
	}

	// The root's own dpkg agrees that everything is installed.
	run := func(args ...string) string {
		t.Helper()
		cmd, err := session.Chroot(root, args...)
		if err != nil {
			t.Fatal(err)
		}
		cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v in the image: %v\n%s", args, err, out)
		}
		return string(out)
	}
	if out := run("dpkg", "--audit"); out != "" {
		t.Errorf("dpkg --audit in the image printed:\n%s", out)
	}
	installed := run("dpkg-query", "-W", "-f", "${Package} ${Status}\n")
	for _, p := range pkgs {
		if !strings.Contains(installed, p.Name+" install ok installed") {
			t.Errorf("%s is not 'install ok installed' in the image:\n%s", p.Name, installed)
		}
	}
	if out := run("dpkg", "--verify", "jailmgr-marker"); out != "" {
		t.Errorf("dpkg --verify jailmgr-marker printed:\n%s", out)
	}

	// The manifest names every package with its hash.
	if len(res.Image.Manifest.Packages) != len(pkgs) || res.Image.Manifest.InReleaseSHA256 == "" {
		t.Errorf("manifest lists %d packages (want %d), InRelease hash %q", len(res.Image.Manifest.Packages), len(pkgs), res.Image.Manifest.InReleaseSHA256)
	}

	// A second run with the warm cache downloads nothing. (Force: without
	// the hooks its inputs differ anyway, but a rebuild is what is tested.)
	before := srv.BytesServed()
	poolBefore := 0
	for _, p := range pkgs {
		poolBefore += srv.Requests(srv.PoolPath(p.Name))
	}
	indexPath := "dists/bookworm/main/binary-" + hostArch() + "/Packages.xz"
	indexBefore := srv.Requests(indexPath)
	o2 := options(srv)
	o2.Force = true
	res2, err := runBootstrap(t, o2, st)
	if err != nil {
		t.Fatalf("second bootstrap: %v", err)
	}
	poolAfter := 0
	for _, p := range pkgs {
		poolAfter += srv.Requests(srv.PoolPath(p.Name))
	}
	if res2.Downloaded != 0 || res2.DownloadedBytes != 0 || poolAfter != poolBefore {
		t.Errorf("warm cache: downloaded %d packages, %d bytes, %d pool requests; want none", res2.Downloaded, res2.DownloadedBytes, poolAfter-poolBefore)
	}
	if !strings.Contains(o2.Log.(*bytes.Buffer).String(), "downloaded 0 bytes") {
		t.Errorf("warm cache run did not say it downloaded nothing:\n%s", o2.Log)
	}
	if n := srv.Requests(indexPath) - indexBefore; n != 0 {
		t.Errorf("warm cache: the Packages index was fetched %d times, want 0 (it is cached by hash)", n)
	}
	t.Logf("second run fetched %d bytes (the signed InRelease)", srv.BytesServed()-before)
	if res2.Image.Ref() != "test:2" || res2.Reused {
		t.Errorf("second image = %s (reused %v), want test:2 built", res2.Image.Ref(), res2.Reused)
	}

	// A third run with the second's inputs reuses its version: no index,
	// no package fetched, nothing committed, no staging left.
	indexBefore, poolBefore = srv.Requests(indexPath), poolAfter
	o3 := options(srv)
	res3, err := runBootstrap(t, o3, st)
	if err != nil {
		t.Fatalf("third bootstrap: %v", err)
	}
	poolAfter = 0
	for _, p := range pkgs {
		poolAfter += srv.Requests(srv.PoolPath(p.Name))
	}
	if res3.Image.Ref() != "test:2" || !res3.Reused || poolAfter != poolBefore || srv.Requests(indexPath) != indexBefore {
		t.Errorf("same inputs: %s (reused %v), %d pool and %d index requests; want test:2 reused, nothing fetched\n%s",
			res3.Image.Ref(), res3.Reused, poolAfter-poolBefore, srv.Requests(indexPath)-indexBefore, o3.Log)
	}
	if !strings.Contains(o3.Log.(*bytes.Buffer).String(), "test:2 has the same inputs: reusing it (--force builds anyway)") {
		t.Errorf("the reusing run did not say so:\n%s", o3.Log)
	}
	if imgs, err := st.Images(); err != nil || len(imgs) != 2 {
		t.Errorf("after a reusing run the store has %d versions (%v), want 2", len(imgs), err)
	}
	if ents, _ := os.ReadDir(filepath.Join(st.Dir, "staging")); len(ents) != 0 {
		t.Errorf("the reusing run left %d staging entries", len(ents))
	}
}

// tinyArchive is a small archive of synthetic packages, enough for the
// verification steps, which fail before anything runs in a root.
func tinyArchive() *archivetest.Archive {
	return &archivetest.Archive{
		Suite: "bookworm", Codename: "bookworm",
		Packages: []archivetest.Package{
			{Name: "base", Priority: "required", Depends: "libfoo (>= 1.0)", Files: []archivetest.File{{Path: "/usr/share/base/x", Data: []byte("x")}}},
			{Name: "libfoo", Version: "1.2", Priority: "optional", Files: []archivetest.File{{Path: "/usr/lib/libfoo", Data: bytes.Repeat([]byte("f"), 4096)}}},
		},
	}
}

func TestTamperRefused(t *testing.T) {
	cases := []struct {
		name   string
		setup  func(*archivetest.Archive)
		tamper func(*archivetest.Server, *Options)
		check  func(t *testing.T, err error)
	}{
		{
			name: "bad signature",
			tamper: func(s *archivetest.Server, _ *Options) {
				s.Tamper("dists/bookworm/InRelease", func(b []byte) []byte {
					return bytes.Replace(b, []byte("Suite: bookworm"), []byte("Suite: bookwork"), 1)
				})
			},
			check: func(t *testing.T, err error) {
				if !errors.Is(err, release.ErrBadSignature) {
					t.Errorf("err = %v, want ErrBadSignature", err)
				}
			},
		},
		{
			name: "unknown key",
			tamper: func(s *archivetest.Server, o *Options) {
				other, err := archivetest.NewKey("someone else")
				if err != nil {
					t.Fatal(err)
				}
				ring, _ := archivetest.PublicKeyring(other)
				o.Keyring = filepath.Join(t.TempDir(), "other.gpg")
				os.WriteFile(o.Keyring, ring, 0o644)
			},
			check: func(t *testing.T, err error) {
				var uk *release.UnknownKeyError
				if !errors.As(err, &uk) || !errors.Is(err, release.ErrUnknownKey) {
					t.Fatalf("err = %v, want UnknownKeyError", err)
				}
				if len(uk.KeyIDs) == 0 || !strings.Contains(err.Error(), uk.KeyIDs[0]) {
					t.Errorf("error %q does not name the signing key id", err)
				}
			},
		},
		{
			name: "Packages hash mismatch",
			tamper: func(s *archivetest.Server, _ *Options) {
				for _, p := range []string{"Packages.xz", "Packages.gz", "Packages"} {
					s.Tamper("dists/bookworm/main/binary-"+hostArch()+"/"+p, func(b []byte) []byte {
						c := append([]byte{}, b...)
						c[len(c)/2] ^= 0xff
						return c
					})
				}
			},
			check: func(t *testing.T, err error) {
				var he *HashError
				if !errors.As(err, &he) || !strings.Contains(he.File, "Packages") || he.WantSHA256 == he.GotSHA {
					t.Errorf("err = %v, want a HashError naming the Packages index", err)
				}
			},
		},
		{
			name: ".deb hash mismatch",
			tamper: func(s *archivetest.Server, _ *Options) {
				s.Tamper(s.PoolPath("libfoo"), func(b []byte) []byte {
					c := append([]byte{}, b...)
					c[len(c)-10] ^= 0xff
					return c
				})
			},
			check: func(t *testing.T, err error) {
				var he *HashError
				if !errors.As(err, &he) || !strings.Contains(he.File, "libfoo") {
					t.Fatalf("err = %v, want a HashError naming libfoo", err)
				}
				if !strings.Contains(err.Error(), he.WantSHA256) || !strings.Contains(err.Error(), he.GotSHA) {
					t.Errorf("error %q does not name expected and actual hashes", err)
				}
			},
		},
		{
			name: "truncated download",
			tamper: func(s *archivetest.Server, _ *Options) {
				s.Truncate(s.PoolPath("libfoo"), 100)
			},
			check: func(t *testing.T, err error) {
				if err == nil || !strings.Contains(err.Error(), "libfoo") {
					t.Errorf("err = %v, want an error naming libfoo", err)
				}
			},
		},
		{
			name: "index older than Valid-Until",
			setup: func(a *archivetest.Archive) {
				a.Date = time.Now().Add(-30 * 24 * time.Hour)
				a.ValidUntil = time.Now().Add(-24 * time.Hour)
			},
			check: func(t *testing.T, err error) {
				if !errors.Is(err, release.ErrExpired) {
					t.Errorf("err = %v, want ErrExpired", err)
				}
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := tinyArchive()
			if c.setup != nil {
				c.setup(a)
			}
			srv := archivetest.Serve(t, a)
			st := openStore(t)
			o := options(srv)
			if c.tamper != nil {
				c.tamper(srv, &o)
			}
			_, err := runBootstrap(t, o, st)
			if err == nil {
				t.Fatal("bootstrap succeeded, want it refused")
			}
			c.check(t, err)
			// Only packages whose hash was verified may be cached: with a
			// tampered or truncated libfoo, at most base is.
			var verified []string
			for _, p := range a.Packages {
				if p.Name == "base" {
					data, _ := srv.File(srv.PoolPath(p.Name))
					sum := sha256.Sum256(data)
					verified = append(verified, hex.EncodeToString(sum[:]))
				}
			}
			assertNothingLeft(t, st, verified...)
		})
	}
}

func TestMissingMirrorAndKeyring(t *testing.T) {
	o := Options{Suite: "focal", AptDir: t.TempDir(), KeyringDir: t.TempDir(), DebootstrapDir: filepath.Join(t.TempDir(), "none")}
	_, err := MakePlan(&o)
	if !errors.Is(err, ErrNoMirror) || !strings.Contains(err.Error(), "--mirror") || !strings.Contains(err.Error(), "mirror.ubuntu") {
		t.Errorf("no mirror: err = %v, want ErrNoMirror naming --mirror and mirror.ubuntu", err)
	}
	o = Options{Suite: "focal", Mirror: "http://127.0.0.1:1/ubuntu", KeyringDir: t.TempDir()}
	_, err = MakePlan(&o)
	if !errors.Is(err, ErrNoKeyring) || !strings.Contains(err.Error(), "ubuntu-keyring") || !strings.Contains(err.Error(), "--keyring") {
		t.Errorf("no keyring: err = %v, want ErrNoKeyring naming the package and --keyring", err)
	}
	o = Options{Suite: "nosuch"}
	if _, err := MakePlan(&o); !errors.Is(err, ErrUnknownSuite) {
		t.Errorf("unknown suite: err = %v", err)
	}
	o = Options{Suite: "bookworm", Variant: "huge"}
	if _, err := MakePlan(&o); !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), "minbase") {
		t.Errorf("bad variant: err = %v", err)
	}
}

func TestHostMirror(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "sources.list.d"), 0o755)
	os.WriteFile(filepath.Join(dir, "sources.list.d", "debian.sources"), []byte("Types: deb\nURIs: http://security.invalid/debian-security\nSuites: bookworm-security\n\nTypes: deb\nURIs: http://deb.invalid/debian\nSuites: bookworm bookworm-updates\nComponents: main\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "sources.list.d", "ubuntu.list"), []byte("deb http://ubuntu.invalid/ubuntu jammy main\n"), 0o644)
	suites, err := Suites()
	if err != nil {
		t.Fatal(err)
	}
	if m, _, err := HostMirror(dir, "debian", suites); err != nil || m != "http://deb.invalid/debian" {
		t.Errorf("debian mirror = %q, %v", m, err)
	}
	if m, _, err := HostMirror(dir, "ubuntu", suites); err != nil || m != "http://ubuntu.invalid/ubuntu" {
		t.Errorf("ubuntu mirror = %q, %v", m, err)
	}
}

func sha256hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
