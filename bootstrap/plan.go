package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"jailmgr/debian/sources"
)

var (
	// ErrNoMirror is returned when no mirror is known for the suite's distribution.
	ErrNoMirror = errors.New("bootstrap: no mirror")
	// ErrNoKeyring is returned when the archive keyring is missing.
	ErrNoKeyring = errors.New("bootstrap: keyring missing")
)

// Plan is what a bootstrap will do, settled before any download.
type Plan struct {
	Suite      *Suite
	Mirror     string // without trailing slash
	MirrorFrom string // "--mirror", "config", the apt sources file, or debootstrap's script
	Keyring    string
	Components []string
	MergedUsr  bool
	// Pockets are the suites read, the release first (see Pocket).
	Pockets []Pocket
}

// MakePlan is MakePlanContext with a background context.
func MakePlan(o *Options) (*Plan, error) {
	return MakePlanContext(context.Background(), o)
}

// MakePlanContext settles suite, mirror, keyring and components from the
// options. A suite alias (stable, devel...) is resolved to its codename
// here, from the archive's signed Release file, so that o.Suite and o.Name
// are settled before the store is touched: that one small download is the
// only network use before Run.
func MakePlanContext(ctx context.Context, o *Options) (*Plan, error) {
	nameGiven := o.Name != ""
	if err := o.setDefaults(); err != nil {
		return nil, err
	}
	suite, err := LookupSuite(o.Suite)
	if dist, ok := suiteAliases[o.Suite]; ok && errors.Is(err, ErrUnknownSuite) {
		suite, err = resolveAlias(ctx, o, dist, nameGiven)
	}
	if err != nil {
		return nil, err
	}
	p := &Plan{Suite: suite, Components: o.Components, MergedUsr: suite.MergedUsrFor(o.Variant)}
	if len(p.Components) == 0 {
		p.Components = suite.Components
	}
	if p.Mirror, p.MirrorFrom, err = planMirror(o, suite); err != nil {
		return nil, err
	}
	if p.Keyring, err = planKeyring(o, suite, p.Mirror); err != nil {
		return nil, err
	}
	if p.Pockets, err = planPockets(o, suite, p); err != nil {
		return nil, err
	}
	return p, nil
}

// planMirror picks the suite's mirror: --mirror, else the config's mirror
// of its distribution, else the host's apt sources, else the default
// mirror of the host's debootstrap script for the suite (on a Debian host,
// the only place that names an Ubuntu mirror). It returns the mirror
// without a trailing slash and where it came from.
func planMirror(o *Options, suite *Suite) (mirror, from string, err error) {
	debootstrapMissing := false
	switch {
	case o.Mirror != "":
		mirror, from = o.Mirror, "--mirror"
	case o.ConfigMirrors[suite.Distribution] != "":
		mirror, from = o.ConfigMirrors[suite.Distribution], "config mirror."+suite.Distribution
	default:
		all, err := Suites()
		if err != nil {
			return "", "", err
		}
		if mirror, from, err = HostMirror(o.AptDir, suite.Distribution, all); err != nil {
			return "", "", err
		}
		if mirror == "" {
			mirror, from, err = debootstrapMirror(o.DebootstrapDir, suite, o.Arch)
			debootstrapMissing = errors.Is(err, errNoDebootstrap)
			if err != nil && !debootstrapMissing {
				return "", "", err
			}
		}
	}
	if mirror == "" {
		return "", "", noMirrorError(suite, debootstrapMissing)
	}
	u, err := url.Parse(mirror)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "file") || (u.Scheme != "file" && u.Host == "") {
		return "", "", fmt.Errorf("%w: mirror %q (from %s) is not an http, https or file URL", ErrUsage, mirror, from)
	}
	return strings.TrimRight(mirror, "/"), from, nil
}

// noMirrorError says where a mirror was looked for and what to pass.
func noMirrorError(suite *Suite, debootstrapMissing bool) error {
	looked := "the host's apt sources or debootstrap's scripts"
	if debootstrapMissing {
		looked = "the host's apt sources (and debootstrap, whose scripts name one, is not installed)"
	}
	return fmt.Errorf("%w for %s (a %s suite) in %s: pass --mirror URL, or set mirror.%s = URL in the [jailmgr] section of /etc/jailmgr.conf",
		ErrNoMirror, suite.Name, suite.Distribution, looked, suite.Distribution)
}

// planKeyring returns --keyring, or the suite's keyring in the keyrings
// folder; either must exist.
func planKeyring(o *Options, suite *Suite, mirror string) (string, error) {
	if o.Keyring != "" {
		if _, err := os.Stat(o.Keyring); err != nil {
			return "", fmt.Errorf("%w: --keyring %s: %v", ErrNoKeyring, o.Keyring, err)
		}
		return o.Keyring, nil
	}
	path := filepath.Join(o.KeyringDir, suite.Keyring)
	if _, err := os.Stat(path); err != nil {
		return "", noKeyringError(path, suite, mirror, hostDistributions("/etc/os-release"))
	}
	return path, nil
}

// noKeyringError says how to get a missing keyring onto this host. A host
// of another distribution may have no package for it (Debian bookworm has
// no ubuntu-keyring), so there the way round through the archive's own
// pool is spelled out; it assumes, as holds for debian-archive-keyring and
// ubuntu-keyring, that the package is built from a source of its name in
// main.
func noKeyringError(path string, suite *Suite, mirror string, host []string) error {
	pkg := suite.KeyringPackage
	if slices.Contains(host, suite.Distribution) {
		return fmt.Errorf("%w: %s is missing: install the %s package, or pass --keyring FILE", ErrNoKeyring, path, pkg)
	}
	prefix := pkg[:min(1, len(pkg))]
	if strings.HasPrefix(pkg, "lib") && len(pkg) > 3 {
		prefix = pkg[:4]
	}
	return fmt.Errorf("%w: %s is missing: install the %s package if this host's distribution has it (apt-cache policy %s), "+
		"or download %s_*.deb from %s/pool/main/%s/%s/, extract it with dpkg-deb -x FILE DIR and pass --keyring DIR/usr/share/keyrings/%s",
		ErrNoKeyring, path, pkg, pkg, pkg, mirror, prefix, pkg, suite.Keyring)
}

// hostDistributions is the host's distribution and those it is like (ID
// and ID_LIKE of os-release), or nil if the file cannot be read.
func hostDistributions(osRelease string) []string {
	data, err := os.ReadFile(osRelease)
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		key, value, ok := strings.Cut(strings.TrimSpace(line), "=")
		if ok && (key == "ID" || key == "ID_LIKE") {
			out = append(out, strings.Fields(strings.Trim(value, `"'`))...)
		}
	}
	return out
}

// HostMirror finds a mirror of the distribution in the host's apt sources:
// the first deb entry whose suite is one of that distribution's suites (or a
// Debian alias such as stable). Update, security and backports entries are
// not mirrors of the release itself and are skipped. It returns "" when none
// matches.
func HostMirror(aptDir, distribution string, suites map[string]*Suite) (mirror, from string, err error) {
	known := map[string]bool{}
	for name, s := range suites {
		if s.Distribution == distribution {
			known[name] = true
		}
	}
	if distribution == "debian" {
		for _, a := range []string{"stable", "testing", "unstable", "oldstable", "oldoldstable"} {
			known[a] = true
		}
	}
	entries, err := hostSources(aptDir)
	if err != nil {
		return "", "", err
	}
	for _, e := range entries {
		if !slices.Contains(e.Types, "deb") {
			continue
		}
		for _, s := range e.Suites {
			if known[s] {
				for _, u := range e.URIs {
					if strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://") {
						return u, e.File, nil
					}
				}
			}
		}
	}
	return "", "", nil
}

func readSources(path string, parse func(io.Reader, string) ([]sources.Entry, error)) ([]sources.Entry, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read apt sources: %w", err)
	}
	defer f.Close()
	entries, err := parse(f, path)
	if err != nil {
		return nil, fmt.Errorf("read apt sources: %w", err)
	}
	return entries, nil
}
