package sources

import (
	"errors"
	"strings"
	"testing"
)

func TestParseList(t *testing.T) {
	in := `# comment
deb http://mirror.invalid/debian bookworm main contrib
deb [arch=amd64 signed-by=/k.gpg] http://mirror.invalid/ubuntu jammy main # trailing
deb-src http://mirror.invalid/debian bookworm main
`
	got, err := ParseList(strings.NewReader(in), "sources.list")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("got %d entries, want 3", len(got))
	}
	if got[0].URIs[0] != "http://mirror.invalid/debian" || got[0].Suites[0] != "bookworm" || strings.Join(got[0].Components, ",") != "main,contrib" {
		t.Errorf("entry 0 = %+v", got[0])
	}
	if got[1].Options["arch"] != "amd64" || got[1].Suites[0] != "jammy" || got[1].Line != 3 {
		t.Errorf("entry 1 = %+v", got[1])
	}
	if got[2].Types[0] != "deb-src" {
		t.Errorf("entry 2 type = %v", got[2].Types)
	}
}

func TestParseListErrors(t *testing.T) {
	for _, in := range []string{"rpm http://x/ a\n", "deb http://x/\n", "deb [arch=amd64 http://x/ a\n"} {
		_, err := ParseList(strings.NewReader(in), "x.list")
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Line != 1 || !errors.Is(err, ErrSyntax) {
			t.Errorf("ParseList(%q) error = %v, want ParseError at line 1", in, err)
		}
	}
}

func TestParseDeb822(t *testing.T) {
	in := `Types: deb
URIs: http://mirror.invalid/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
Enabled: no
URIs: http://off.invalid/
Suites: sid
`
	got, err := ParseDeb822(strings.NewReader(in), "debian.sources")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("got %d entries, want 1 (disabled one left out)", len(got))
	}
	if len(got[0].Suites) != 2 || got[0].Options["signed-by"] == "" || got[0].Line != 1 {
		t.Errorf("entry = %+v", got[0])
	}
	if _, err := ParseDeb822(strings.NewReader("Types: deb\n"), "bad.sources"); !errors.Is(err, ErrSyntax) {
		t.Errorf("entry without URIs: err = %v, want ErrSyntax", err)
	}
}
