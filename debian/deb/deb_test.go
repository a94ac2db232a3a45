package deb

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"io/fs"
	"strings"
	"testing"

	"jailmgr/debian/compress"
)

type tarEntry struct {
	name string
	mode int64
	data string
	typ  byte // 0 means regular file
	link string
}

func buildTar(t testing.TB, name string, entries []tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := compress.NewWriter(name, &buf)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, Size: int64(len(e.data)), Typeflag: e.typ, Linkname: e.link, Format: tar.FormatGNU}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, e.data); err != nil && h.Typeflag == tar.TypeReg {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

const testControl = `Package: hello
Version: 2.10-3
Architecture: amd64
Maintainer: Santiago Vila <sanvila@debian.org>
Installed-Size: 280
Depends: libc6 (>= 2.34)
Section: devel
Priority: optional
Description: example package based on GNU hello
 The GNU hello program produces a familiar, friendly greeting.
 .
 Second paragraph.
`

var testControlFiles = []tarEntry{
	{name: "./", typ: tar.TypeDir, mode: 0o755},
	{name: "./control", mode: 0o644, data: testControl},
	{name: "./md5sums", mode: 0o644, data: "6a7e1e5b1c2a1e1f7e3c2a1e1f7e3c2a  usr/bin/hello\n"},
	{name: "./postinst", mode: 0o755, data: "#!/bin/sh\nset -e\necho configured\n"},
	{name: "./conffiles", mode: 0o644, data: "/etc/hello.conf\n"},
	{name: "./prerm", typ: tar.TypeSymlink, link: "postinst"},
}

var testDataFiles = []tarEntry{
	{name: "./", typ: tar.TypeDir, mode: 0o755},
	{name: "./usr/", typ: tar.TypeDir, mode: 0o755},
	{name: "./usr/bin/", typ: tar.TypeDir, mode: 0o755},
	{name: "./usr/bin/hello", mode: 0o755, data: strings.Repeat("\x7fELF binary ", 1000)},
	{name: "./etc/hello.conf", mode: 0o644, data: "greeting = hi\n"},
	{name: "./usr/bin/hi", typ: tar.TypeSymlink, link: "hello"},
}

// buildDeb assembles a .deb the way dpkg-deb lays it out.
func buildDeb(t testing.TB, sfx string, control, data []tarEntry) []byte {
	return buildAr(
		arMember{name: "debian-binary", data: []byte("2.0\n")},
		arMember{name: "control.tar" + sfx, data: buildTar(t, "control.tar"+sfx, control)},
		arMember{name: "data.tar" + sfx, data: buildTar(t, "data.tar"+sfx, data)},
	)
}

type dataEntry struct {
	name, link string
	typ        byte
	data       string
}

func readDeb(raw io.Reader) (*Control, []dataEntry, error) {
	d := NewReader(raw)
	defer d.Close()
	c, err := d.Control()
	if err != nil {
		return nil, nil, err
	}
	tr, err := d.Data()
	if err != nil {
		return c, nil, err
	}
	var entries []dataEntry
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return c, entries, err
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return c, entries, err
		}
		entries = append(entries, dataEntry{name: h.Name, link: h.Linkname, typ: h.Typeflag, data: string(b)})
	}
	return c, entries, d.Close()
}

func checkControl(t *testing.T, what string, c *Control) {
	t.Helper()
	if got := c.Paragraph.Get("Package"); got != "hello" {
		t.Errorf("%s: Package %q, want hello", what, got)
	}
	if got := c.Paragraph.Get("Version"); got != "2.10-3" {
		t.Errorf("%s: Version %q, want 2.10-3", what, got)
	}
	if got := c.Paragraph.Get("Description"); !strings.HasPrefix(got, "example package based on GNU hello\n The GNU") {
		t.Errorf("%s: Description %q", what, got)
	}
	f, ok := c.File("postinst")
	if !ok {
		t.Fatalf("%s: no postinst among %v", what, fileNames(c))
	}
	if f.Mode.Perm() != 0o755 || !f.Mode.IsRegular() || !strings.Contains(string(f.Data), "echo configured") {
		t.Errorf("%s: postinst mode %v, data %q", what, f.Mode, f.Data)
	}
	if f, ok := c.File("conffiles"); !ok || string(f.Data) != "/etc/hello.conf\n" {
		t.Errorf("%s: conffiles %q (present %v)", what, f.Data, ok)
	}
	if _, ok := c.File("control"); !ok {
		t.Errorf("%s: control not among the files %v", what, fileNames(c))
	}
	if _, ok := c.File("nonexistent"); ok {
		t.Errorf("%s: File(nonexistent) found something", what)
	}
}

func fileNames(c *Control) []string {
	var names []string
	for _, f := range c.Files {
		names = append(names, f.Name)
	}
	return names
}

func TestReader(t *testing.T) {
	for _, sfx := range []string{".xz", ".zst", ".gz", ""} {
		raw := buildDeb(t, sfx, testControlFiles, testDataFiles)
		c, entries, err := readDeb(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("%q: %v", sfx, err)
		}
		checkControl(t, "compression "+sfx, c)
		// The symlinked prerm is not a plain file and is left out.
		if got := strings.Join(fileNames(c), ","); got != "control,md5sums,postinst,conffiles" {
			t.Errorf("%q: control files %s", sfx, got)
		}
		if len(entries) != len(testDataFiles) {
			t.Fatalf("%q: %d data entries, want %d", sfx, len(entries), len(testDataFiles))
		}
		for i, want := range testDataFiles {
			if got := entries[i]; got.name != want.name || got.data != want.data || got.link != want.link {
				t.Errorf("%q: data entry %d: %q (%d bytes, link %q), want %q (%d bytes, link %q)",
					sfx, i, got.name, len(got.data), got.link, want.name, len(want.data), want.link)
			}
		}
	}
}

// TestReaderDataWithoutControl: Data reads past control.tar by itself.
func TestReaderDataWithoutControl(t *testing.T) {
	d := NewReader(bytes.NewReader(buildDeb(t, ".xz", testControlFiles, testDataFiles)))
	tr, err := d.Data()
	if err != nil {
		t.Fatal(err)
	}
	h, err := tr.Next()
	if err != nil || h.Name != "./" {
		t.Fatalf("first data entry %v, %v", h, err)
	}
	if _, err := d.Data(); err == nil {
		t.Error("second Data call: no error")
	}
	if err := d.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestReaderExtraMembers(t *testing.T) {
	raw := buildAr(
		arMember{name: "debian-binary", data: []byte("2.1\nfuture stuff\n")},
		arMember{name: "_gpgorigin", data: []byte("signature")},
		arMember{name: "control.tar.gz", data: buildTar(t, "control.tar.gz", testControlFiles)},
		arMember{name: "_extra", data: []byte("x")},
		arMember{name: "data.tar.zst", data: buildTar(t, "data.tar.zst", testDataFiles)},
	)
	c, entries, err := readDeb(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	checkControl(t, "extra members", c)
	if len(entries) != len(testDataFiles) {
		t.Errorf("%d data entries, want %d", len(entries), len(testDataFiles))
	}
}

func TestReaderErrors(t *testing.T) {
	ctl := func(sfx string, files []tarEntry) arMember {
		return arMember{name: "control.tar" + sfx, data: buildTar(t, "control.tar"+sfx, files)}
	}
	dat := arMember{name: "data.tar.xz", data: buildTar(t, "data.tar.xz", testDataFiles)}
	bin := arMember{name: "debian-binary", data: []byte("2.0\n")}
	noControl := []tarEntry{{name: "./postinst", data: "#!/bin/sh\n"}}
	badControl := []tarEntry{{name: "./control", data: "Package hello\n"}}
	// A claimed size over the limit must be refused before reading it.
	huge := append(buildAr(bin), arHeader("control.tar.xz", maxControlSize+1, 0)...)
	cases := []struct {
		name   string
		raw    []byte
		target error
		text   string // must appear in the error
	}{
		{"not ar", []byte("PK\x03\x04 a zip file"), ErrFormat, "magic"},
		{"empty archive", buildAr(), ErrFormat, "debian-binary"},
		{"version 3", buildAr(arMember{name: "debian-binary", data: []byte("3.0\n")}, ctl(".xz", testControlFiles), dat), ErrFormat, "debian-binary"},
		{"version garbage", buildAr(arMember{name: "debian-binary", data: []byte("2.x\n")}, ctl(".xz", testControlFiles), dat), ErrFormat, "debian-binary"},
		{"debian-binary huge", buildAr(arMember{name: "debian-binary", data: bytes.Repeat([]byte("2"), 2000)}), ErrFormat, "debian-binary"},
		{"control first", buildAr(ctl(".xz", testControlFiles), bin, dat), ErrFormat, "control.tar.xz"},
		{"no control.tar", buildAr(bin), ErrFormat, "control.tar"},
		{"data before control", buildAr(bin, dat), ErrFormat, "data.tar.xz"},
		{"bzip2 control", buildAr(bin, arMember{name: "control.tar.bz2", data: []byte("BZh")}), compress.ErrUnsupported, "control.tar.bz2"},
		{"control.tar over limit", huge, ErrFormat, "control.tar.xz"},
		{"control.tar truncated", buildAr(bin, arMember{name: "control.tar.xz", data: buildTar(t, "c.xz", testControlFiles)[:100]}), io.ErrUnexpectedEOF, "control.tar.xz"},
		{"control.tar corrupt", buildAr(bin, arMember{name: "control.tar.gz", data: []byte("not gzip")}), nil, "control.tar.gz"},
		{"no control file", buildAr(bin, ctl(".gz", noControl), dat), ErrFormat, "control.tar.gz"},
		{"bad control file", buildAr(bin, ctl(".gz", badControl), dat), nil, "control"},
		{"no data.tar", buildAr(bin, ctl(".xz", testControlFiles)), ErrFormat, "data.tar"},
		{"lzma data", buildAr(bin, ctl(".xz", testControlFiles), arMember{name: "data.tar.lzma", data: []byte("x")}), compress.ErrUnsupported, "data.tar.lzma"},
		{"unknown member", buildAr(bin, ctl(".xz", testControlFiles), arMember{name: "data.tar.foo", data: []byte("x")}), ErrFormat, "data.tar.foo"},
		{"data.tar truncated", buildAr(bin, ctl(".xz", testControlFiles), arMember{name: "data.tar.zst", data: buildTar(t, "d.zst", testDataFiles)[:200]}), nil, "data.tar.zst"},
	}
	for _, c := range cases {
		_, _, err := readDeb(bytes.NewReader(c.raw))
		t.Logf("%s: %v", c.name, err)
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		if c.target != nil && !errors.Is(err, c.target) {
			t.Errorf("%s: error %v, want one wrapping %v", c.name, err, c.target)
		}
		if !strings.Contains(err.Error(), c.text) {
			t.Errorf("%s: error %q does not name %q", c.name, err, c.text)
		}
	}
}

// TestControlDecompressionBomb: a small control.tar.zst that expands past
// the limit is refused rather than read into memory.
func TestControlDecompressionBomb(t *testing.T) {
	if testing.Short() {
		t.Skip("compresses 64 MiB")
	}
	big := tarEntry{name: "./control", data: strings.Repeat("\x00", maxControlSize+1)}
	raw := buildAr(arMember{name: "debian-binary", data: []byte("2.0\n")},
		arMember{name: "control.tar.zst", data: buildTar(t, "c.zst", []tarEntry{big})})
	if len(raw) > 1<<20 {
		t.Fatalf("test bug: bomb is %d bytes", len(raw))
	}
	_, err := NewReader(bytes.NewReader(raw)).Control()
	if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "limit") {
		t.Errorf("error %v, want a limit error wrapping ErrFormat", err)
	}
}

func TestControlFileModes(t *testing.T) {
	files := []tarEntry{
		{name: "control", mode: 0o644, data: testControl}, // no "./" prefix
		{name: "./config", mode: 0o4755, data: "#!/bin/sh\n"},
	}
	c, err := NewReader(bytes.NewReader(buildDeb(t, "", files, testDataFiles))).Control()
	if err != nil {
		t.Fatal(err)
	}
	f, ok := c.File("config")
	if !ok || f.Mode != fs.ModeSetuid|0o755 {
		t.Errorf("config: mode %v (found %v), want %v", f.Mode, ok, fs.ModeSetuid|0o755)
	}
	if c.Paragraph.Get("Package") != "hello" {
		t.Errorf("control without ./ prefix not parsed: %v", fileNames(c))
	}
}

func FuzzDeb(f *testing.F) {
	for _, sfx := range []string{".xz", ".zst", ".gz", ""} {
		f.Add(buildDeb(f, sfx, testControlFiles, testDataFiles[:4]))
	}
	f.Add(buildAr(arMember{name: "debian-binary", data: []byte("2.0\n")}))
	f.Fuzz(func(t *testing.T, raw []byte) {
		d := NewReader(bytes.NewReader(raw))
		defer d.Close()
		c, err := d.Control()
		if err != nil {
			return
		}
		if c.Paragraph == nil {
			t.Fatal("Control returned no paragraph and no error")
		}
		tr, err := d.Data()
		if err != nil {
			return
		}
		for i := 0; i < 10000; i++ {
			if _, err := tr.Next(); err != nil {
				return
			}
			if _, err := io.Copy(io.Discard, io.LimitReader(tr, 64<<20)); err != nil {
				return
			}
		}
	})
}
