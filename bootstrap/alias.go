package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"

	"github.com/ProtonMail/go-crypto/openpgp"

	"jailmgr/debian/release"
)

// ErrAlias is returned when a suite alias's Release file does not say
// which suite it is.
var ErrAlias = errors.New("bootstrap: cannot resolve suite alias")

// suiteAliases are the names an archive gives whichever release holds
// that role now (dists/stable is a link to dists/bookworm), with the
// distribution whose archive has them: debootstrap accepts them too.
var suiteAliases = map[string]string{
	"oldoldstable": "debian",
	"oldstable":    "debian",
	"stable":       "debian",
	"testing":      "debian",
	"unstable":     "debian",
	"devel":        "ubuntu",
}

// resolveAlias turns the alias in o.Suite into the codename that the
// archive's signed Release file for it names, and returns that codename's
// suite: o.Suite becomes the codename, and so does o.Name unless it was
// given. The table, not the archive, must know the codename: its
// definition says how to bootstrap it.
func resolveAlias(ctx context.Context, o *Options, distribution string, nameGiven bool) (*Suite, error) {
	alias := o.Suite
	all, err := Suites()
	if err != nil {
		return nil, err
	}
	// The alias has the mirror and keyring of its distribution; a stand-in
	// suite lets the plan's own rules find them.
	stand := distributionSuite(all, distribution)
	stand.Name = alias
	mirror, _, err := planMirror(o, stand)
	if err != nil {
		return nil, err
	}
	keyringPath, err := planKeyring(o, stand, mirror)
	if err != nil {
		return nil, err
	}
	keyring, err := loadKeyring(keyringPath)
	if err != nil {
		return nil, err
	}
	rel, _, err := fetchPocketRelease(ctx, o, keyringPath, keyring, Pocket{Name: PocketRelease, Suite: alias, Mirror: mirror})
	if err != nil {
		return nil, err
	}
	codename := rel.Codename
	if codename == "" {
		return nil, fmt.Errorf("%w %s: %s/dists/%s/Release has no Codename field (pass the codename instead)", ErrAlias, alias, mirror, alias)
	}
	// dists/stable holds the file of the release it links to, so its
	// Suite is the alias (Debian) or the codename itself (Ubuntu's devel);
	// anything else is some other suite's file.
	if rel.Suite != alias && rel.Suite != codename {
		return nil, fmt.Errorf("%w %s: %s/dists/%s/Release is the file of suite %q, codename %q (the mirror is misconfigured; pass the codename instead)",
			ErrAlias, alias, mirror, alias, rel.Suite, codename)
	}
	suite, err := LookupSuite(codename)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: the archive says it is %s: %w", alias, codename, err)
	}
	if suite.Distribution != distribution {
		return nil, fmt.Errorf("%w %s: the archive says it is %s, which scripts/suites.ini defines as a %s suite, not %s",
			ErrAlias, alias, codename, suite.Distribution, distribution)
	}
	fmt.Fprintf(o.Log, "%s is %s (from the archive's Release file)\n", alias, codename)
	o.Suite = codename
	if !nameGiven {
		o.Name = codename
	}
	return suite, nil
}

// distributionSuite is a copy of the distribution's suite whose keyring
// most of its suites share (all of them, today), the one that verifies an
// alias's Release file.
func distributionSuite(all map[string]*Suite, distribution string) *Suite {
	var names []string
	count := map[string]int{}
	for name, s := range all {
		if s.Distribution == distribution {
			names = append(names, name)
			count[s.Keyring]++
		}
	}
	sort.Strings(names)
	var best *Suite
	for _, n := range names {
		if s := all[n]; best == nil || count[s.Keyring] > count[best.Keyring] {
			best = s
		}
	}
	if best == nil {
		return &Suite{Distribution: distribution}
	}
	c := *best
	return &c
}

// loadKeyring reads an OpenPGP keyring file.
func loadKeyring(path string) (openpgp.EntityList, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoKeyring, err)
	}
	defer f.Close()
	keyring, err := release.ReadKeyring(f)
	if err != nil {
		return nil, fmt.Errorf("read keyring %s: %w", path, err)
	}
	return keyring, nil
}
