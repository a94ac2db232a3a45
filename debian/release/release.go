// Package release reads an archive's Release and InRelease files and checks
// their OpenPGP signatures, the root of trust for everything downloaded
// from a mirror: Packages indexes are checked against the SHA256 list here,
// and .debs against the Packages indexes.
//
// Limits: only the SHA256 file list is read (MD5Sum and SHA1 are too weak
// to trust, SHA512 is not needed); signatures are checked with the OpenPGP
// v1 API of ProtonMail/go-crypto, which also accepts SHA-1 self-signatures
// on older archive keys.
package release

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"jailmgr/debian/control"
)

// ErrExpired is wrapped by *ExpiredError.
var ErrExpired = errors.New("release: Release file expired")

// FileHash is one entry of the SHA256 field: an index file, its size and
// its hash (lower-case hex, as written).
type FileHash struct {
	Path   string
	Size   int64
	SHA256 string
}

// Release is the content of a Release file, or the signed part of an
// InRelease file.
type Release struct {
	Origin, Label, Suite, Codename, Version string
	Date, ValidUntil                        time.Time // zero if absent
	Architectures, Components               []string
	AcquireByHash                           bool
	Files                                   map[string]FileHash // from SHA256, keyed by path ("main/binary-amd64/Packages.xz")
	Paragraph                               *control.Paragraph
}

// ExpiredError reports a Release file used after its Valid-Until date:
// a mirror that stopped updating, or someone replaying old indexes.
type ExpiredError struct {
	ValidUntil, Now time.Time
}

func (e *ExpiredError) Error() string {
	return fmt.Sprintf("%s: valid until %s, now %s; use an up-to-date mirror or check the system clock",
		ErrExpired, e.ValidUntil.UTC().Format(time.RFC1123), e.Now.UTC().Format(time.RFC1123))
}

// Unwrap returns ErrExpired.
func (e *ExpiredError) Unwrap() error { return ErrExpired }

// name is how errors refer to the input; Parse does not know the URL.
const name = "Release"

// Parse reads a Release file: one deb822 paragraph. Field errors are
// *control.ParseError values naming the field and its line. An InRelease
// file must go through VerifyInRelease first; Parse refuses its armor.
func Parse(r io.Reader) (*Release, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte("-----BEGIN PGP")) {
		return nil, &control.ParseError{Name: name, Line: 1,
			Reason: "OpenPGP armor; verify InRelease with VerifyInRelease and parse its content"}
	}
	p, err := control.ParseParagraph(data, name)
	if err != nil {
		return nil, err
	}
	rel := &Release{
		Origin:        p.Get("Origin"),
		Label:         p.Get("Label"),
		Suite:         p.Get("Suite"),
		Codename:      p.Get("Codename"),
		Version:       p.Get("Version"),
		Architectures: strings.Fields(p.Get("Architectures")),
		Components:    strings.Fields(p.Get("Components")),
		Files:         map[string]FileHash{},
		Paragraph:     p,
	}
	lines := fieldLines(p)
	fieldErr := func(field, reason string, offset int) error {
		return &control.ParseError{Name: name, Line: lines[strings.ToLower(field)] + offset, Field: field, Reason: reason}
	}
	for _, f := range []struct {
		field string
		dst   *time.Time
	}{{"Date", &rel.Date}, {"Valid-Until", &rel.ValidUntil}} {
		v, ok := p.Lookup(f.field)
		if !ok {
			continue
		}
		t, err := parseDate(v)
		if err != nil {
			return nil, fieldErr(f.field, err.Error(), 0)
		}
		*f.dst = t
	}
	// apt reads this as a boolean and treats anything unknown as false.
	switch strings.ToLower(p.Get("Acquire-By-Hash")) {
	case "yes", "true":
		rel.AcquireByHash = true
	}
	for i, line := range strings.Split(p.Get("SHA256"), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		fh, err := parseFileHash(line)
		if err != nil {
			return nil, fieldErr("SHA256", err.Error(), i)
		}
		if _, dup := rel.Files[fh.Path]; dup {
			return nil, fieldErr("SHA256", fmt.Sprintf("%s listed twice", fh.Path), i)
		}
		rel.Files[fh.Path] = fh
	}
	return rel, nil
}

// fieldLines maps each field (lower-cased) to its line in the input. The
// control package keeps only the paragraph's first line; multi-line values
// keep one "\n" per continuation line, so the rest can be counted.
func fieldLines(p *control.Paragraph) map[string]int {
	lines := make(map[string]int, len(p.Fields))
	line := p.Line
	for _, f := range p.Fields {
		lines[strings.ToLower(f.Name)] = line
		line += 1 + strings.Count(f.Value, "\n")
	}
	return lines
}

// parseFileHash reads " <sha256> <size> <path>".
func parseFileHash(line string) (FileHash, error) {
	parts := strings.Fields(line)
	if len(parts) != 3 {
		return FileHash{}, fmt.Errorf("want \"hash size path\", got %q", strings.TrimSpace(line))
	}
	sum, path := parts[0], parts[2]
	if len(sum) != 64 {
		return FileHash{}, fmt.Errorf("hash %q of %s is not 64 hex digits", sum, path)
	}
	if _, err := hex.DecodeString(sum); err != nil {
		return FileHash{}, fmt.Errorf("hash %q of %s is not hex", sum, path)
	}
	size, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || size < 0 || parts[1][0] == '+' {
		return FileHash{}, fmt.Errorf("size %q of %s is not a number", parts[1], path)
	}
	return FileHash{Path: path, Size: size, SHA256: strings.ToLower(sum)}, nil
}

// dateLayouts are the RFC 2822 forms archives write ("Sat, 10 Jun 2023
// 08:54:10 UTC"), with a one- or two-digit day and a zone name or offset.
// Numeric offsets come first because the MST layout would take "+0000" for
// a zone name.
var dateLayouts = []string{
	"Mon, _2 Jan 2006 15:04:05 -0700",
	"Mon, 02 Jan 2006 15:04:05 -0700",
	"Mon, _2 Jan 2006 15:04:05 MST",
	"Mon, 02 Jan 2006 15:04:05 MST",
}

// parseDate reads a Date or Valid-Until value. Zone names other than UTC
// and GMT are refused: Go would read them as an unknown zone at offset 0,
// silently shifting the time.
func parseDate(s string) (time.Time, error) {
	for _, layout := range dateLayouts {
		t, err := time.Parse(layout, s)
		if err != nil {
			continue
		}
		if strings.HasSuffix(layout, "MST") {
			if zone, _ := t.Zone(); zone != "UTC" && zone != "GMT" {
				return time.Time{}, fmt.Errorf("date %q: time zone %s is not UTC", s, zone)
			}
		}
		return t.UTC(), nil
	}
	return time.Time{}, fmt.Errorf("date %q is not in RFC 2822 form (\"Sat, 10 Jun 2023 08:54:10 UTC\")", s)
}

// CheckValid returns an *ExpiredError if now is past the Valid-Until date.
// A Release without Valid-Until (stable suites of some archives) never
// expires.
func (r *Release) CheckValid(now time.Time) error {
	if r.ValidUntil.IsZero() || !now.After(r.ValidUntil) {
		return nil
	}
	return &ExpiredError{ValidUntil: r.ValidUntil, Now: now}
}
