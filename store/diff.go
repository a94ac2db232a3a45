package store

import (
	"fmt"
	"sort"
)

// DiffReport is how one image version differs from another.
type DiffReport struct {
	From            string          `json:"from"` // "name:version"
	To              string          `json:"to"`
	PackagesAdded   []Package       `json:"packages_added"`
	PackagesRemoved []Package       `json:"packages_removed"`
	PackagesChanged []PackageChange `json:"packages_changed"`
	FilesAdded      []string        `json:"files_added"`
	FilesRemoved    []string        `json:"files_removed"`
	FilesChanged    []PathChange    `json:"files_changed"`
}

// PackageChange is a package both versions hold, built differently.
type PackageChange struct {
	Name string `json:"name"`
	Arch string `json:"arch,omitempty"`
	From string `json:"from"` // version in the first image
	To   string `json:"to"`
}

// Diff compares two image versions: their packages (from the manifests,
// by name and architecture; a package is changed when its version or its
// .deb's SHA256 differs) and their files (from the indexes, computed from
// the tree for a version committed before indexes existed).
func Diff(a, b *Image) (*DiffReport, error) {
	d := &DiffReport{From: a.Ref(), To: b.Ref(), PackagesAdded: []Package{}, PackagesRemoved: []Package{},
		PackagesChanged: []PackageChange{}, FilesAdded: []string{}, FilesRemoved: []string{}, FilesChanged: []PathChange{}}
	key := func(p Package) string { return p.Name + ":" + p.Arch }
	old := map[string]Package{}
	for _, p := range a.Manifest.Packages {
		old[key(p)] = p
	}
	for _, p := range b.Manifest.Packages {
		o, ok := old[key(p)]
		switch {
		case !ok:
			d.PackagesAdded = append(d.PackagesAdded, p)
		case o.Version != p.Version || o.SHA256 != p.SHA256:
			d.PackagesChanged = append(d.PackagesChanged, PackageChange{Name: p.Name, Arch: p.Arch, From: o.Version, To: p.Version})
		}
		delete(old, key(p))
	}
	for _, p := range old {
		d.PackagesRemoved = append(d.PackagesRemoved, p)
	}
	byName := func(l []Package) func(i, j int) bool {
		return func(i, j int) bool { return key(l[i]) < key(l[j]) }
	}
	sort.Slice(d.PackagesAdded, byName(d.PackagesAdded))
	sort.Slice(d.PackagesRemoved, byName(d.PackagesRemoved))
	sort.Slice(d.PackagesChanged, func(i, j int) bool {
		x, y := d.PackagesChanged[i], d.PackagesChanged[j]
		return x.Name+":"+x.Arch < y.Name+":"+y.Arch
	})

	ia, err := a.Index()
	if err != nil {
		return nil, fmt.Errorf("diff %s %s: %w", a.Ref(), b.Ref(), err)
	}
	ib, err := b.Index()
	if err != nil {
		return nil, fmt.Errorf("diff %s %s: %w", a.Ref(), b.Ref(), err)
	}
	i, j := 0, 0
	for i < len(ia) || j < len(ib) {
		switch {
		case j == len(ib) || i < len(ia) && PathLess(ia[i].Path, ib[j].Path):
			d.FilesRemoved = append(d.FilesRemoved, ia[i].Path)
			i++
		case i == len(ia) || PathLess(ib[j].Path, ia[i].Path):
			d.FilesAdded = append(d.FilesAdded, ib[j].Path)
			j++
		default:
			if c := compareEntries(&ia[i], &ib[j]); c != nil {
				d.FilesChanged = append(d.FilesChanged, *c)
			}
			i++
			j++
		}
	}
	return d, nil
}
