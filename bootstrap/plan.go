package bootstrap

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
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
	MirrorFrom string // "--mirror", "config", or the apt sources file
	Keyring    string
	Components []string
	MergedUsr  bool
}

// MakePlan settles suite, mirror, keyring and components from the options.
func MakePlan(o *Options) (*Plan, error) {
	if err := o.setDefaults(); err != nil {
		return nil, err
	}
	suite, err := LookupSuite(o.Suite)
	if err != nil {
		return nil, err
	}
	p := &Plan{Suite: suite, Components: o.Components, MergedUsr: suite.MergedUsrFor(o.Variant)}
	if len(p.Components) == 0 {
		p.Components = suite.Components
	}
	switch {
	case o.Mirror != "":
		p.Mirror, p.MirrorFrom = o.Mirror, "--mirror"
	case o.ConfigMirrors[suite.Distribution] != "":
		p.Mirror, p.MirrorFrom = o.ConfigMirrors[suite.Distribution], "config mirror."+suite.Distribution
	default:
		all, err := Suites()
		if err != nil {
			return nil, err
		}
		p.Mirror, p.MirrorFrom, err = HostMirror(o.AptDir, suite.Distribution, all)
		if err != nil {
			return nil, err
		}
	}
	if p.Mirror == "" {
		return nil, fmt.Errorf("%w for %s (a %s suite): pass --mirror URL, or set mirror.%s = URL in the [jailmgr] section of /etc/jailmgr.conf",
			ErrNoMirror, suite.Name, suite.Distribution, suite.Distribution)
	}
	u, err := url.Parse(p.Mirror)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "file") || (u.Scheme != "file" && u.Host == "") {
		return nil, fmt.Errorf("%w: mirror %q (from %s) is not an http, https or file URL", ErrUsage, p.Mirror, p.MirrorFrom)
	}
	p.Mirror = strings.TrimRight(p.Mirror, "/")

	p.Keyring = o.Keyring
	if p.Keyring == "" {
		p.Keyring = filepath.Join(o.KeyringDir, suite.Keyring)
		if _, err := os.Stat(p.Keyring); err != nil {
			return nil, fmt.Errorf("%w: %s is missing: install the %s package, or pass --keyring FILE", ErrNoKeyring, p.Keyring, suite.KeyringPackage)
		}
	} else if _, err := os.Stat(p.Keyring); err != nil {
		return nil, fmt.Errorf("%w: --keyring %s: %v", ErrNoKeyring, p.Keyring, err)
	}
	return p, nil
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
	var files []string
	if _, err := os.Stat(filepath.Join(aptDir, "sources.list")); err == nil {
		files = append(files, filepath.Join(aptDir, "sources.list"))
	}
	more, _ := filepath.Glob(filepath.Join(aptDir, "sources.list.d", "*"))
	sort.Strings(more)
	files = append(files, more...)
	for _, f := range files {
		var entries []sources.Entry
		switch {
		case strings.HasSuffix(f, ".list") || filepath.Base(f) == "sources.list":
			entries, err = readSources(f, sources.ParseList)
		case strings.HasSuffix(f, ".sources"):
			entries, err = readSources(f, sources.ParseDeb822)
		default:
			continue
		}
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
							return u, f, nil
						}
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
