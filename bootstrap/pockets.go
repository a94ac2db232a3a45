package bootstrap

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"jailmgr/debian/sources"
)

// The pockets a suite may have. The release is the suite as it was
// released; updates (SUITE-updates) holds its stable updates and security
// (SUITE-security) its security fixes. An image built from the release
// alone is as old as the release, and apt inside it can never bring it up
// to date, since its sources name the release only.
const (
	PocketRelease  = "release"
	PocketUpdates  = "updates"
	PocketSecurity = "security"
)

// Pockets lists every pocket name, in the order bootstrap reads them.
var Pockets = []string{PocketRelease, PocketUpdates, PocketSecurity}

// ErrNoSecurityMirror is returned when a Debian suite's security pocket is
// wanted and no security mirror is known.
var ErrNoSecurityMirror = errors.New("bootstrap: no security mirror")

// Pocket is one suite of the archive that a bootstrap reads.
type Pocket struct {
	Name       string // PocketRelease, PocketUpdates or PocketSecurity
	Suite      string // its name under dists/: bookworm, bookworm-updates...
	Mirror     string // without trailing slash
	MirrorFrom string // where Mirror came from, shown in the plan line
}

// checkPocketNames validates --pockets: known names, release among them.
// Nil (the suite's default) is valid.
func checkPocketNames(names []string) error {
	if names == nil {
		return nil
	}
	for _, n := range names {
		if !slices.Contains(Pockets, n) {
			return fmt.Errorf("%w: --pockets %q: unknown pocket %q (valid: %s)", ErrUsage, strings.Join(names, ","), n, strings.Join(Pockets, ", "))
		}
	}
	if !slices.Contains(names, PocketRelease) {
		return fmt.Errorf("%w: --pockets %q: the release pocket is required (for example --pockets release,updates)", ErrUsage, strings.Join(names, ","))
	}
	return nil
}

// planPockets settles which pockets a bootstrap reads and from which
// mirrors, given the release mirror the plan already has.
func planPockets(o *Options, suite *Suite, p *Plan) ([]Pocket, error) {
	want := o.Pockets
	if want == nil {
		want = append([]string{PocketRelease}, suite.Pockets...)
	}
	for _, n := range want {
		if n != PocketRelease && !slices.Contains(suite.Pockets, n) {
			return nil, fmt.Errorf("%w: --pockets: %s has no %s pocket (its pockets: %s)", ErrUsage, suite.Name, n,
				strings.Join(append([]string{PocketRelease}, suite.Pockets...), ", "))
		}
	}
	var out []Pocket
	// The canonical order, whatever the order of --pockets: the sources
	// list and the manifest come out the same, and where two pockets hold
	// the same version the earlier one is used.
	for _, n := range Pockets {
		if !slices.Contains(want, n) {
			continue
		}
		switch n {
		case PocketRelease:
			out = append(out, Pocket{Name: n, Suite: o.Suite, Mirror: p.Mirror, MirrorFrom: p.MirrorFrom})
		case PocketUpdates:
			// Both distributions publish SUITE-updates beside the release.
			out = append(out, Pocket{Name: n, Suite: o.Suite + "-updates", Mirror: p.Mirror, MirrorFrom: p.MirrorFrom})
		case PocketSecurity:
			m, from, err := securityMirror(o, suite, p)
			if err != nil {
				return nil, err
			}
			out = append(out, Pocket{Name: n, Suite: o.Suite + "-security", Mirror: m, MirrorFrom: from})
		}
	}
	return out, nil
}

// securityMirror finds the mirror of the suite's security pocket:
// --security-mirror, else the config's security-mirror.DISTRIBUTION, else
// the host's apt sources, else (Ubuntu only, whose archive mirrors carry
// SUITE-security themselves) the release mirror. Debian publishes its
// security pocket on a separate archive, which no release mirror has.
func securityMirror(o *Options, suite *Suite, p *Plan) (mirror, from string, err error) {
	dist := suite.Distribution
	switch {
	case o.SecurityMirror != "":
		mirror, from = o.SecurityMirror, "--security-mirror"
	case o.ConfigSecurityMirrors[dist] != "":
		mirror, from = o.ConfigSecurityMirrors[dist], "config security-mirror."+dist
	default:
		all, err := Suites()
		if err != nil {
			return "", "", err
		}
		mirror, from, err = HostSecurityMirror(o.AptDir, dist, []string{o.Suite + "-security", suite.Name + "-security"}, all)
		if err != nil {
			return "", "", err
		}
	}
	if mirror == "" && dist == "ubuntu" {
		return p.Mirror, "the release mirror, " + p.MirrorFrom, nil
	}
	if mirror == "" {
		return "", "", fmt.Errorf("%w for %s-security (a %s suite, whose security pocket is on its own archive): pass --security-mirror URL, or set security-mirror.%s = URL in the [jailmgr] section of /etc/jailmgr.conf, or build without it with --pockets release,updates",
			ErrNoSecurityMirror, o.Suite, dist, dist)
	}
	if err := checkMirrorURL(mirror); err != nil {
		return "", "", fmt.Errorf("%w: security mirror %q (from %s) is not an http, https or file URL", ErrUsage, mirror, from)
	}
	return strings.TrimRight(mirror, "/"), from, nil
}

func checkMirrorURL(m string) error {
	u, err := url.Parse(m)
	if err != nil {
		return err
	}
	if (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "file") || (u.Scheme != "file" && u.Host == "") {
		return errors.New("not an http, https or file URL")
	}
	return nil
}

// HostSecurityMirror finds a security mirror of the distribution in the
// host's apt sources: the first deb entry naming one of the exact suites
// (CODENAME-security), else the first naming any security pocket of the
// distribution (a host of another release still names the right archive).
// It returns "" when none matches.
func HostSecurityMirror(aptDir, distribution string, exact []string, suites map[string]*Suite) (mirror, from string, err error) {
	known := map[string]bool{}
	for name, s := range suites {
		if s.Distribution == distribution {
			known[name+"-security"] = true
		}
	}
	if distribution == "debian" {
		for _, a := range []string{"stable", "testing", "oldstable", "oldoldstable"} {
			known[a+"-security"] = true
		}
	}
	entries, err := hostSources(aptDir)
	if err != nil {
		return "", "", err
	}
	for _, match := range []func(string) bool{
		func(s string) bool { return slices.Contains(exact, s) },
		func(s string) bool { return known[s] },
	} {
		for _, e := range entries {
			if !slices.Contains(e.Types, "deb") || !slices.ContainsFunc(e.Suites, match) {
				continue
			}
			for _, u := range e.URIs {
				if strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://") {
					return u, e.File, nil
				}
			}
		}
	}
	return "", "", nil
}

// hostSources reads the host's apt sources: sources.list, then the .list
// and .sources files of sources.list.d in name order, as apt does.
func hostSources(aptDir string) ([]sources.Entry, error) {
	var files []string
	if _, err := os.Stat(filepath.Join(aptDir, "sources.list")); err == nil {
		files = append(files, filepath.Join(aptDir, "sources.list"))
	}
	more, _ := filepath.Glob(filepath.Join(aptDir, "sources.list.d", "*"))
	sort.Strings(more)
	files = append(files, more...)
	var out []sources.Entry
	for _, f := range files {
		var entries []sources.Entry
		var err error
		switch {
		case strings.HasSuffix(f, ".list") || filepath.Base(f) == "sources.list":
			entries, err = readSources(f, sources.ParseList)
		case strings.HasSuffix(f, ".sources"):
			entries, err = readSources(f, sources.ParseDeb822)
		default:
			continue
		}
		if err != nil {
			return nil, err
		}
		for i := range entries {
			entries[i].File = f
		}
		out = append(out, entries...)
	}
	return out, nil
}

// pockets returns the plan's pockets; a plan made without MakePlan reads
// the release only.
func (p *Plan) pockets(suite string) []Pocket {
	if len(p.Pockets) > 0 {
		return p.Pockets
	}
	return []Pocket{{Name: PocketRelease, Suite: suite, Mirror: p.Mirror, MirrorFrom: p.MirrorFrom}}
}

// pocketsLine describes the pockets beyond the release for the plan line.
func (p *Plan) pocketsLine() string {
	var b strings.Builder
	for _, pk := range p.Pockets {
		if pk.Name != PocketRelease {
			fmt.Fprintf(&b, "; %s from %s (%s)", pk.Suite, pk.Mirror, pk.MirrorFrom)
		}
	}
	return b.String()
}

// hasComponent reports whether a Release file's Components field lists
// comp. Debian's security archive lists "updates/main" for the index that
// lies under main/, and apt accepts that as main.
func hasComponent(listed []string, comp string) bool {
	if len(listed) == 0 {
		return true
	}
	for _, c := range listed {
		if c == comp || strings.HasSuffix(c, "/"+comp) {
			return true
		}
	}
	return false
}
