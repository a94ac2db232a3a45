package bootstrap

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"jailmgr/debian/dependency"
)

// ErrSelect is wrapped when the package set cannot be selected.
var ErrSelect = errors.New("bootstrap: cannot select packages")

// Selection is the package set of a bootstrap.
type Selection struct {
	// Required are the packages of Priority required (and Essential: yes)
	// with their dependencies; Base the variant's packages beyond those.
	Required, Base []*Candidate
}

// All returns Required then Base.
func (s *Selection) All() []*Candidate {
	return append(append([]*Candidate{}, s.Required...), s.Base...)
}

// Select picks the package set as debootstrap does for the same suite and
// variant: the seeds (Priority required; then apt for minbase, apt and
// build-essential for buildd, Priority important for the default variant),
// minus --exclude, plus --include, each closed over Depends and Pre-Depends
// taking the first alternative and leaving out virtual names. Where that rule
// leaves a dependency unsatisfied (a virtual first alternative, a version
// the first choice does not meet) dpkg would refuse to configure, so a
// second pass adds the best package that satisfies it.
func Select(idx *Index, suite *Suite, variant string, include, exclude []string) (*Selection, error) {
	var required, base []string
	for name, cs := range idx.Packages {
		c := cs[0]
		switch {
		case variant == "essential":
			if c.Essential {
				required = append(required, name)
			}
		case c.Priority == "required" || c.Essential:
			required = append(required, name)
		}
		switch variant {
		case "default":
			if c.Priority == "important" {
				base = append(base, name)
			}
		case "standard":
			if c.Priority == "important" || c.Priority == "standard" {
				base = append(base, name)
			}
		}
	}
	if variant != "essential" {
		required = append(required, suite.ExtraRequired...)
	}
	switch variant {
	case "minbase":
		base = append(base, "apt")
	case "buildd":
		base = append(base, "apt", "build-essential")
	}
	for _, n := range include {
		if _, ok := idx.Packages[n]; !ok {
			return nil, fmt.Errorf("%w: --include %s: no such package in %s (components searched: %s; add one with --components)", ErrSelect, n, suite.Name, strings.Join(idx.Components, ","))
		}
		base = append(base, n)
	}
	required = without(required, exclude)
	base = without(base, exclude)
	if len(required) == 0 {
		return nil, fmt.Errorf("%w: the index of %s has no required packages", ErrSelect, suite.Name)
	}

	req, err := idx.resolve(required, suite.ExcludeDependency)
	if err != nil {
		return nil, err
	}
	bas, err := idx.resolve(base, suite.ExcludeDependency)
	if err != nil {
		return nil, err
	}
	sel := map[string]*Candidate{}
	for _, n := range req {
		sel[n] = idx.Packages[n][0]
	}
	var baseNames []string
	for _, n := range bas {
		if _, ok := sel[n]; !ok {
			baseNames = append(baseNames, n)
			sel[n] = idx.Packages[n][0]
		}
	}
	added, err := idx.complete(sel, suite.ExcludeDependency)
	if err != nil {
		return nil, err
	}
	baseNames = append(baseNames, added...)
	out := &Selection{}
	for _, n := range req {
		out.Required = append(out.Required, sel[n])
	}
	sort.Strings(baseNames)
	for _, n := range baseNames {
		out.Base = append(out.Base, sel[n])
	}
	return out, nil
}

// resolve is debootstrap's resolve_deps: the closure of names over the first
// alternative of each Depends and Pre-Depends, keeping only real packages.
func (idx *Index) resolve(names []string, excludeDeps []string) ([]string, error) {
	all := map[string]bool{}
	var todo []string
	for _, n := range names {
		if _, ok := idx.Packages[n]; ok && !all[n] {
			all[n] = true
			todo = append(todo, n)
		}
	}
	skip := map[string]bool{}
	for _, n := range excludeDeps {
		skip[n] = true
	}
	for len(todo) > 0 {
		n := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		c := idx.Packages[n][0]
		if err := c.relations(); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrSelect, err)
		}
		for _, rels := range []dependency.Relations{c.rel.predeps, c.rel.deps} {
			for _, alts := range rels {
				if len(alts) == 0 {
					continue
				}
				d := alts[0].Name
				if skip[d] || all[d] {
					continue
				}
				if _, ok := idx.Packages[d]; !ok {
					continue // virtual or missing: debootstrap drops it
				}
				all[d] = true
				todo = append(todo, d)
			}
		}
	}
	out := make([]string, 0, len(all))
	for n := range all {
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}

// complete adds packages until every Depends and Pre-Depends of the
// selection is satisfied; it returns the names it added.
func (idx *Index) complete(sel map[string]*Candidate, excludeDeps []string) ([]string, error) {
	var added []string
	for {
		provides := map[string][]*Candidate{}
		for _, c := range sel {
			if err := c.relations(); err != nil {
				return nil, fmt.Errorf("%w: %v", ErrSelect, err)
			}
			for _, alts := range c.rel.provs {
				for _, p := range alts {
					provides[p.Name] = append(provides[p.Name], c)
				}
			}
		}
		names := make([]string, 0, len(sel))
		for n := range sel {
			names = append(names, n)
		}
		sort.Strings(names)
		changed := false
		for _, n := range names {
			c := sel[n]
			for _, rels := range []dependency.Relations{c.rel.predeps, c.rel.deps} {
				for _, alts := range rels {
					if satisfied(alts, sel, provides) {
						continue
					}
					pick := idx.choose(alts, excludeDeps)
					if pick == nil {
						return nil, fmt.Errorf("%w: %s %s depends on %s, which no package of the suite's components satisfies (add a component with --components, or --exclude %s)", ErrSelect, c.Name, c.Version, altString(alts), c.Name)
					}
					if _, ok := sel[pick.Name]; ok {
						return nil, fmt.Errorf("%w: %s %s depends on %s, but the suite has %s %s", ErrSelect, c.Name, c.Version, altString(alts), pick.Name, sel[pick.Name].Version)
					}
					sel[pick.Name] = pick
					added = append(added, pick.Name)
					changed = true
				}
			}
		}
		if !changed {
			return added, nil
		}
	}
}

// satisfied reports whether the selection meets one "a | b | c" relation.
func satisfied(alts dependency.Alternatives, sel map[string]*Candidate, provides map[string][]*Candidate) bool {
	for _, r := range alts {
		if c, ok := sel[r.Name]; ok && r.SatisfiedBy(c.ver()) {
			return true
		}
		for _, p := range provides[r.Name] {
			for _, prov := range p.rel.provs {
				for _, pr := range prov {
					if pr.Name != r.Name {
						continue
					}
					if r.Op == dependency.OpNone || (pr.Op == dependency.OpEq && r.SatisfiedBy(pr.Version)) {
						return true
					}
				}
			}
		}
	}
	return false
}

// choose picks the package that satisfies a relation: the first alternative
// that is a real package in a fitting version, else the first provider.
func (idx *Index) choose(alts dependency.Alternatives, excludeDeps []string) *Candidate {
	for _, r := range alts {
		if slices.Contains(excludeDeps, r.Name) {
			continue
		}
		for _, c := range idx.Packages[r.Name] {
			if r.SatisfiedBy(c.ver()) {
				return c
			}
		}
	}
	var names []string
	for n := range idx.Packages {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, r := range alts {
		for _, n := range names {
			c := idx.Packages[n][0]
			if c.relations() != nil {
				continue
			}
			for _, prov := range c.rel.provs {
				for _, pr := range prov {
					if pr.Name == r.Name && (r.Op == dependency.OpNone || (pr.Op == dependency.OpEq && r.SatisfiedBy(pr.Version))) {
						return c
					}
				}
			}
		}
	}
	return nil
}

func altString(alts dependency.Alternatives) string {
	parts := make([]string, len(alts))
	for i, r := range alts {
		parts[i] = r.String()
	}
	return strings.Join(parts, " | ")
}

func without(list, drop []string) []string {
	var out []string
	for _, x := range list {
		if !slices.Contains(drop, x) {
			out = append(out, x)
		}
	}
	return out
}
