package release

import (
	"errors"
	"strings"
	"testing"
	"time"

	"jailmgr/debian/control"
)

// sampleRelease follows the layout of a Debian stable Release file.
const sampleRelease = `Origin: Debian
Label: Debian
Suite: stable
Version: 12.5
Codename: bookworm
Date: Sat, 10 Feb 2024 10:16:37 UTC
Valid-Until: Sat, 17 Feb 2024 10:16:37 UTC
Acquire-By-Hash: yes
No-Support-for-Architecture-all: Packages
Architectures: all amd64 arm64 armel armhf i386 mips64el mipsel ppc64el s390x
Components: main contrib non-free-firmware non-free
Description: Debian 12.5 Released 10 February 2024
MD5Sum:
 0ed6d4c8891eb86358b94bb35d9e4da4  1484322 contrib/Contents-all
SHA256:
 3957f28db16e3f28c7b34ae84f1c929c567de6970f3f1b95dac9b498dd80fe63   738242 contrib/Contents-all
 3e9a121d599b56c08bc8f144e4830807c77c29d7114316d6984ba54695d3db7b    57319 contrib/Contents-all.gz
 e9a79b2ec32ddb6e2dfa8a7e5f5b5e5c0a7f4d3f8e6a4f3c0b1b2c3d4e5f6a7b      0 main/binary-amd64/Packages
 E9A79B2EC32DDB6E2DFA8A7E5F5B5E5C0A7F4D3F8E6A4F3C0B1B2C3D4E5F6A7C 8786420 main/binary-amd64/Packages.xz
`

func TestParse(t *testing.T) {
	r, err := Parse(strings.NewReader(sampleRelease))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct{ field, got, want string }{
		{"Origin", r.Origin, "Debian"},
		{"Label", r.Label, "Debian"},
		{"Suite", r.Suite, "stable"},
		{"Codename", r.Codename, "bookworm"},
		{"Version", r.Version, "12.5"},
		{"Architectures", strings.Join(r.Architectures, ","), "all,amd64,arm64,armel,armhf,i386,mips64el,mipsel,ppc64el,s390x"},
		{"Components", strings.Join(r.Components, ","), "main,contrib,non-free-firmware,non-free"},
		{"Paragraph Description", r.Paragraph.Get("Description"), "Debian 12.5 Released 10 February 2024"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.field, c.got, c.want)
		}
	}
	if want := time.Date(2024, 2, 10, 10, 16, 37, 0, time.UTC); !r.Date.Equal(want) || r.Date.Location() != time.UTC {
		t.Errorf("Date = %v, want %v", r.Date, want)
	}
	if want := time.Date(2024, 2, 17, 10, 16, 37, 0, time.UTC); !r.ValidUntil.Equal(want) {
		t.Errorf("ValidUntil = %v, want %v", r.ValidUntil, want)
	}
	if !r.AcquireByHash {
		t.Error("AcquireByHash = false, want true")
	}
	if len(r.Files) != 4 {
		t.Errorf("%d files, want 4 (MD5Sum must not be read): %v", len(r.Files), r.Files)
	}
	want := FileHash{Path: "main/binary-amd64/Packages.xz", Size: 8786420, SHA256: "e9a79b2ec32ddb6e2dfa8a7e5f5b5e5c0a7f4d3f8e6a4f3c0b1b2c3d4e5f6a7c"}
	if got := r.Files[want.Path]; got != want {
		t.Errorf("Files[%q] = %+v, want %+v (hash lower-cased)", want.Path, got, want)
	}
	if got := r.Files["main/binary-amd64/Packages"]; got.Size != 0 || got.Path == "" {
		t.Errorf("empty Packages entry: %+v", got)
	}
}

func TestParseMinimal(t *testing.T) {
	r, err := Parse(strings.NewReader("Suite: unstable\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !r.Date.IsZero() || !r.ValidUntil.IsZero() || r.AcquireByHash || len(r.Files) != 0 || r.Files == nil {
		t.Errorf("minimal Release: %+v", r)
	}
}

func TestParseErrors(t *testing.T) {
	base := "Origin: Debian\nCodename: bookworm\n"
	cases := []struct {
		name, input, field string
		line               int
	}{
		{"bad date", base + "Date: yesterday\n", "Date", 3},
		{"date in another zone", base + "Date: Sat, 10 Feb 2024 10:16:37 EST\n", "Date", 3},
		{"bad valid-until", base + "Valid-Until: Sat, 99 Feb 2024 10:16:37 UTC\n", "Valid-Until", 3},
		{"short hash", base + "SHA256:\n abc 12 main/Packages\n", "SHA256", 4},
		{"non-hex hash", base + "SHA256:\n " + strings.Repeat("g", 64) + " 12 main/Packages\n", "SHA256", 4},
		{"negative size", base + "SHA256:\n " + strings.Repeat("a", 64) + " -1 main/Packages\n", "SHA256", 4},
		{"missing path", base + "Description: x\n two\nSHA256:\n " + strings.Repeat("a", 64) + " 1 a\n " + strings.Repeat("a", 64) + " 12\n", "SHA256", 7},
		{"duplicate path", base + "SHA256:\n " + strings.Repeat("a", 64) + " 1 a\n " + strings.Repeat("b", 64) + " 2 a\n", "SHA256", 5},
		{"InRelease armor", "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n" + base, "", 1},
		{"not deb822", "this is not a Release file\n", "", 1},
	}
	for _, c := range cases {
		_, err := Parse(strings.NewReader(c.input))
		var pe *control.ParseError
		if !errors.As(err, &pe) {
			t.Errorf("%s: error %v, want a *control.ParseError", c.name, err)
			continue
		}
		t.Logf("%s: %v", c.name, err)
		if pe.Field != c.field || pe.Line != c.line || pe.Name != "Release" {
			t.Errorf("%s: error names %s line %d field %q, want Release line %d field %q", c.name, pe.Name, pe.Line, pe.Field, c.line, c.field)
		}
		if !errors.Is(err, control.ErrSyntax) {
			t.Errorf("%s: error does not wrap control.ErrSyntax", c.name)
		}
	}
}

func TestParseDate(t *testing.T) {
	want := time.Date(2023, 6, 10, 8, 54, 10, 0, time.UTC)
	for _, s := range []string{
		"Sat, 10 Jun 2023 08:54:10 UTC",
		"Sat, 10 Jun 2023 08:54:10 GMT",
		"Sat, 10 Jun 2023 08:54:10 +0000",
		"Sat, 10 Jun 2023 10:54:10 +0200",
	} {
		got, err := parseDate(s)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseDate(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	if got, err := parseDate("Thu, 1 Jun 2023 00:00:00 UTC"); err != nil || got.Day() != 1 {
		t.Errorf("one-digit day: %v, %v", got, err)
	}
	for _, s := range []string{"", "2023-06-10T08:54:10Z", "Sat, 10 Jun 2023 08:54:10 CEST", "Sat, 10 Jun 2023 08:54:10"} {
		if got, err := parseDate(s); err == nil {
			t.Errorf("parseDate(%q) = %v, want an error", s, got)
		}
	}
}

func TestCheckValid(t *testing.T) {
	until := time.Date(2024, 2, 17, 10, 16, 37, 0, time.UTC)
	r := &Release{ValidUntil: until}
	if err := r.CheckValid(until); err != nil {
		t.Errorf("at Valid-Until: %v", err)
	}
	if err := r.CheckValid(until.Add(-time.Hour)); err != nil {
		t.Errorf("before Valid-Until: %v", err)
	}
	now := until.Add(time.Second)
	err := r.CheckValid(now)
	var ee *ExpiredError
	if !errors.As(err, &ee) || !errors.Is(err, ErrExpired) || !ee.ValidUntil.Equal(until) || !ee.Now.Equal(now) {
		t.Fatalf("after Valid-Until: %v, want *ExpiredError wrapping ErrExpired", err)
	}
	if !strings.Contains(err.Error(), "Sat, 17 Feb 2024 10:16:37 UTC") {
		t.Errorf("error %q does not say when the file expired", err)
	}
	if err := (&Release{}).CheckValid(time.Now()); err != nil {
		t.Errorf("no Valid-Until: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(sampleRelease)
	f.Add("SHA256:\n x 1 y\n")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(strings.NewReader(s))
		if err != nil {
			return
		}
		for path, fh := range r.Files {
			if fh.Path != path || fh.Size < 0 || len(fh.SHA256) != 64 {
				t.Fatalf("bad file entry %q: %+v", path, fh)
			}
		}
	})
}
