package control

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestReaderMatchesDpkgQuery reads the host's dpkg database and compares
// each package's name, version and description with what dpkg-query, the
// reference reader of that file, prints for them.
func TestReaderMatchesDpkgQuery(t *testing.T) {
	const path = "/var/lib/dpkg/status"
	query, err := exec.LookPath("dpkg-query")
	if err != nil {
		t.Skip("dpkg-query not found in PATH; it is the reference reader of the dpkg database")
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		t.Skipf("%s not found", path)
	}
	if err != nil {
		t.Fatal(err)
	}
	// One record per package, ended by an ASCII record separator since
	// descriptions span lines (dpkg-query has no escape for NUL).
	out, err := exec.Command(query, "--admindir=/var/lib/dpkg", "-W", "-f", "${Package}\\t${Version}\\t${Description}\x1e").Output()
	if err != nil {
		t.Fatalf("run dpkg-query: %v", err)
	}
	want := map[string]string{}
	for rec := range strings.SplitSeq(strings.TrimSuffix(string(out), "\x1e"), "\x1e") {
		name, rest, _ := strings.Cut(rec, "\t")
		// dpkg keeps white space at the end of a multi-line value's first
		// line; Value trims it, as the contract of this package says.
		first, more, multi := strings.Cut(rest, "\n")
		if multi {
			rest = strings.TrimRight(first, " \t") + "\n" + more
		}
		want[name] = rest
	}

	r := NewReader(strings.NewReader(string(data)), path)
	seen := 0
	for {
		p, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := p.Get("Package")
		w, ok := want[name]
		if !ok || p.Get("Status") == "" || strings.HasSuffix(p.Get("Status"), "not-installed") {
			continue
		}
		if got := p.Get("Version") + "\t" + p.Get("Description"); got != w {
			t.Errorf("%s line %d: package %s: got %.200q, dpkg-query says %.200q", path, p.Line, name, got, w)
		}
		seen++
	}
	if seen == 0 {
		t.Skipf("no installed packages in %s", path)
	}
	t.Logf("compared %d packages with dpkg-query", seen)
}
