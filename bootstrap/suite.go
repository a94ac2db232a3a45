package bootstrap

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"gopkg.in/ini.v1"

	"jailmgr/scripts"
)

// ErrUnknownSuite is returned for a suite that scripts/suites.ini does not define.
var ErrUnknownSuite = errors.New("bootstrap: unknown suite")

// Suite is one suite's definition from scripts/suites.ini.
type Suite struct {
	Name              string
	Distribution      string // "debian" or "ubuntu"
	Keyring           string // file name in the keyrings folder
	KeyringPackage    string // host package that ships Keyring
	Components        []string
	MergedUsr         bool
	MergedUsrBuildd   bool
	ExtraRequired     []string
	ExcludeDependency []string
	// UnmergedFlag is the file debootstrap writes into a root it leaves
	// unmerged on a suite where merged /usr is the norm.
	UnmergedFlag string
	// Pockets are the suite's pockets besides the release ("updates",
	// "security"), in the order bootstrap reads them.
	Pockets []string
}

// MergedUsrFor reports whether the variant gets a merged-/usr root.
func (s *Suite) MergedUsrFor(variant string) bool {
	if variant == "buildd" {
		return s.MergedUsrBuildd
	}
	return s.MergedUsr
}

// Suites parses the suite table.
func Suites() (map[string]*Suite, error) {
	f, err := ini.LoadSources(ini.LoadOptions{}, scripts.Suites)
	if err != nil {
		return nil, fmt.Errorf("read suites.ini: %w", err)
	}
	out := map[string]*Suite{}
	for _, sec := range f.Sections() {
		if sec.Name() == ini.DefaultSection {
			continue
		}
		s := &Suite{
			Name:              sec.Name(),
			Distribution:      sec.Key("distribution").String(),
			Keyring:           sec.Key("keyring").String(),
			KeyringPackage:    sec.Key("keyring-package").String(),
			Components:        fields(sec.Key("components").String()),
			ExtraRequired:     fields(sec.Key("extra-required").String()),
			ExcludeDependency: fields(sec.Key("exclude-dependency").String()),
			UnmergedFlag:      sec.Key("unmerged-flag").String(),
			Pockets:           fields(sec.Key("pockets").String()),
		}
		if s.Distribution != "debian" && s.Distribution != "ubuntu" {
			return nil, fmt.Errorf("read suites.ini: [%s] distribution: %q is not debian or ubuntu", s.Name, s.Distribution)
		}
		for _, pk := range s.Pockets {
			if pk == PocketRelease || !slices.Contains(Pockets, pk) {
				return nil, fmt.Errorf("read suites.ini: [%s] pockets: %q is not one of %s", s.Name, pk, strings.Join(Pockets[1:], ", "))
			}
		}
		s.MergedUsr, err = sec.Key("merged-usr").Bool()
		if err != nil {
			return nil, fmt.Errorf("read suites.ini: [%s] merged-usr: %w", s.Name, err)
		}
		s.MergedUsrBuildd = s.MergedUsr
		if sec.HasKey("merged-usr-buildd") {
			if s.MergedUsrBuildd, err = sec.Key("merged-usr-buildd").Bool(); err != nil {
				return nil, fmt.Errorf("read suites.ini: [%s] merged-usr-buildd: %w", s.Name, err)
			}
		}
		out[s.Name] = s
	}
	return out, nil
}

// LookupSuite returns the named suite, or an error listing the known ones.
func LookupSuite(name string) (*Suite, error) {
	all, err := Suites()
	if err != nil {
		return nil, err
	}
	if s, ok := all[name]; ok {
		return s, nil
	}
	names := make([]string, 0, len(all))
	for n := range all {
		names = append(names, n)
	}
	sort.Strings(names)
	return nil, fmt.Errorf("%w %q: known suites are %s (add one in scripts/suites.ini)", ErrUnknownSuite, name, strings.Join(names, ", "))
}

// fields splits a list written with commas and/or spaces.
func fields(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
}
