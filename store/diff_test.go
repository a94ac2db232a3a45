package store

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
)

func TestDiff(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	commit := func(files map[string]string, mode map[string]os.FileMode, pkgs []Package) *Image {
		stg, err := s.NewStaging()
		if err != nil {
			t.Fatal(err)
		}
		writeFiles(t, stg.Root(), files)
		for p, m := range mode {
			os.Chmod(filepath.Join(stg.Root(), p), m)
		}
		img, err := stg.Commit("d", &Manifest{Packages: pkgs})
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	a := commit(map[string]string{"etc/keep": "k", "etc/edit": "1", "etc/gone": "g", "bin/x": "x"}, nil,
		[]Package{{Name: "libc6", Version: "2.36-9", Arch: "amd64"}, {Name: "libc6", Version: "2.36-9", Arch: "i386"},
			{Name: "old", Version: "1"}, {Name: "same", Version: "1", SHA256: "aa"}, {Name: "rebuilt", Version: "1", SHA256: "aa"}})
	b := commit(map[string]string{"etc/keep": "k", "etc/edit": "2", "etc/new": "n", "bin/x": "x"}, map[string]os.FileMode{"bin/x": 0o755},
		[]Package{{Name: "libc6", Version: "2.36-9+deb12u1", Arch: "amd64"}, {Name: "libc6", Version: "2.36-9", Arch: "i386"},
			{Name: "new", Version: "3"}, {Name: "same", Version: "1", SHA256: "aa"}, {Name: "rebuilt", Version: "1", SHA256: "bb"}})

	d, err := Diff(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if d.From != "d:1" || d.To != "d:2" {
		t.Errorf("from %s to %s", d.From, d.To)
	}
	if len(d.PackagesAdded) != 1 || d.PackagesAdded[0].Name != "new" || len(d.PackagesRemoved) != 1 || d.PackagesRemoved[0].Name != "old" {
		t.Errorf("packages added %v, removed %v", d.PackagesAdded, d.PackagesRemoved)
	}
	wantChanged := []PackageChange{{Name: "libc6", Arch: "amd64", From: "2.36-9", To: "2.36-9+deb12u1"}, {Name: "rebuilt", From: "1", To: "1"}}
	if !reflect.DeepEqual(d.PackagesChanged, wantChanged) {
		t.Errorf("packages changed %+v, want %+v", d.PackagesChanged, wantChanged)
	}
	if !slices.Equal(d.FilesAdded, []string{"etc/new"}) || !slices.Equal(d.FilesRemoved, []string{"etc/gone"}) {
		t.Errorf("files added %v, removed %v", d.FilesAdded, d.FilesRemoved)
	}
	// Folders whose entries changed are not changed themselves.
	if got := paths(d.FilesChanged); !slices.Equal(got, []string{"bin/x", "etc/edit"}) {
		t.Fatalf("files changed %v", got)
	}
	if c := d.FilesChanged[0]; c.Content || !slices.Equal(c.Fields, []string{"mode"}) {
		t.Errorf("bin/x: %+v, want a mode change", c)
	}
	if c := d.FilesChanged[1]; !c.Content || !slices.Equal(c.Fields, []string{"content"}) {
		t.Errorf("etc/edit: %+v, want a content change", c)
	}

	// An image against itself differs in nothing.
	d, err = Diff(b, b)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.PackagesAdded)+len(d.PackagesRemoved)+len(d.PackagesChanged)+len(d.FilesAdded)+len(d.FilesRemoved)+len(d.FilesChanged) != 0 {
		t.Errorf("Diff(b, b) = %+v", d)
	}
}
