package dependency

import (
	"errors"
	"io"
	"os"
	"testing"

	"jailmgr/debian/control"
)

// TestParseHostStatus parses every relationship field of the host's dpkg
// database: real-world input that dpkg itself accepted.
func TestParseHostStatus(t *testing.T) {
	const path = "/var/lib/dpkg/status"
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		t.Skipf("%s not found: no dpkg database on this host to take real fields from", path)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := control.NewReader(f, path)
	fields := []string{"Depends", "Pre-Depends", "Recommends", "Suggests", "Enhances", "Conflicts", "Breaks", "Replaces", "Provides"}
	n := 0
	for {
		p, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range fields {
			s, ok := p.Lookup(name)
			if !ok {
				continue
			}
			rels, err := Parse(s)
			if err != nil {
				t.Errorf("%s: package %s: %s: %v", path, p.Get("Package"), name, err)
				continue
			}
			if _, err := Parse(rels.String()); err != nil {
				t.Errorf("%s: package %s: %s: String() does not parse back: %v", path, p.Get("Package"), name, err)
			}
			n++
		}
	}
	if n == 0 {
		t.Skipf("%s has no relationship fields", path)
	}
	t.Logf("parsed %d fields from %s", n, path)
}
