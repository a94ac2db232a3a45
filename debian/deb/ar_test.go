package deb

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

type arMember struct {
	name string
	data []byte
	mode int64 // 0 means 0644
}

// arHeader formats one 60-byte member header the way dpkg-deb does, with
// GNU's "/" after the name.
func arHeader(name string, size int64, mode int64) []byte {
	if mode == 0 {
		mode = 0o644
	}
	h := fmt.Sprintf("%-16s%-12d%-6d%-6d%-8o%-10d`\n", name+"/", 1686387250, 0, 0, mode, size)
	if len(h) != arHeaderSize {
		panic(fmt.Sprintf("test bug: ar header for %q is %d bytes", name, len(h)))
	}
	return []byte(h)
}

func buildAr(members ...arMember) []byte {
	var b bytes.Buffer
	b.WriteString(arMagic)
	for _, m := range members {
		b.Write(arHeader(m.name, int64(len(m.data)), m.mode))
		b.Write(m.data)
		if len(m.data)%2 == 1 {
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

func readAllMembers(t *testing.T, r io.Reader) ([]arMember, error) {
	t.Helper()
	ar := NewArReader(r)
	var got []arMember
	for {
		h, err := ar.Next()
		if err == io.EOF {
			return got, nil
		}
		if err != nil {
			return got, err
		}
		data, err := io.ReadAll(ar)
		if err != nil {
			return got, err
		}
		if int64(len(data)) != h.Size {
			t.Errorf("member %q: read %d bytes, header says %d", h.Name, len(data), h.Size)
		}
		got = append(got, arMember{name: h.Name, data: data, mode: h.Mode})
	}
}

func TestArReader(t *testing.T) {
	want := []arMember{
		{name: "debian-binary", data: []byte("2.0\n")},
		{name: "odd", data: []byte("abc"), mode: 0o755},
		{name: "empty", data: nil},
		{name: "sixteen-chars-xx", data: []byte("x")},
		{name: "big", data: bytes.Repeat([]byte("0123456789"), 10001)},
	}
	// The sixteen-character name leaves no room for the GNU slash.
	raw := buildAr(want[:3]...)
	raw = append(raw, fmt.Sprintf("%-16s%-12d%-6d%-6d%-8o%-10d`\nx\n", want[3].name, 0, 0, 0, 0o644, 1)...)
	raw = append(raw, buildAr(want[4])[len(arMagic):]...)

	for _, wrap := range []struct {
		name string
		fn   func(io.Reader) io.Reader
	}{
		{"plain", func(r io.Reader) io.Reader { return r }},
		{"OneByteReader", iotest.OneByteReader},
		{"HalfReader", iotest.HalfReader},
	} {
		got, err := readAllMembers(t, wrap.fn(bytes.NewReader(raw)))
		if err != nil {
			t.Fatalf("%s: %v", wrap.name, err)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d members, want %d", wrap.name, len(got), len(want))
		}
		for i := range want {
			wm := want[i].mode
			if wm == 0 {
				wm = 0o644
			}
			if got[i].name != want[i].name || !bytes.Equal(got[i].data, want[i].data) || got[i].mode != wm {
				t.Errorf("%s: member %d = %q (%d bytes, mode %o), want %q (%d bytes, mode %o)", wrap.name, i,
					got[i].name, len(got[i].data), got[i].mode, want[i].name, len(want[i].data), wm)
			}
		}
	}

	// Skipping members without reading them, or reading them in part.
	ar := NewArReader(bytes.NewReader(raw))
	var names []string
	for i := 0; ; i++ {
		h, err := ar.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Next after partial reads: %v", err)
		}
		if i%2 == 1 {
			var b [1]byte
			if _, err := ar.Read(b[:]); err != nil && h.Size > 0 {
				t.Fatalf("read 1 byte of %q: %v", h.Name, err)
			}
		}
		if i == 0 && !h.ModTime.Equal(time.Unix(1686387250, 0)) {
			t.Errorf("ModTime = %v, want %v", h.ModTime, time.Unix(1686387250, 0))
		}
		names = append(names, h.Name)
	}
	if got := strings.Join(names, ","); got != "debian-binary,odd,empty,sixteen-chars-xx,big" {
		t.Errorf("member names %s", got)
	}
	if _, err := ar.Next(); err != io.EOF {
		t.Errorf("Next after the end: %v, want io.EOF", err)
	}
	if n, err := ar.Read(make([]byte, 4)); n != 0 || err != io.EOF {
		t.Errorf("Read after the end: %d, %v; want 0, io.EOF", n, err)
	}
}

// TestArReaderMissingLastPad accepts an archive whose odd-sized last member
// has no padding byte, as some writers produce.
func TestArReaderMissingLastPad(t *testing.T) {
	raw := buildAr(arMember{name: "a", data: []byte("xyz")})
	got, err := readAllMembers(t, bytes.NewReader(raw[:len(raw)-1]))
	if err != nil || len(got) != 1 || string(got[0].data) != "xyz" {
		t.Fatalf("got %v, %v; want one member \"xyz\"", got, err)
	}
}

func TestArReaderErrors(t *testing.T) {
	good := buildAr(arMember{name: "debian-binary", data: []byte("2.0\n")}, arMember{name: "control.tar.xz", data: []byte("abc")})
	hdr := len(arMagic) + arHeaderSize + 4 // offset of the second header
	patch := func(off int, s string) []byte {
		b := bytes.Clone(good)
		copy(b[off:], s)
		return b
	}
	cases := []struct {
		name   string
		raw    []byte
		target error
		member string // must appear in the error text
	}{
		{"empty input", nil, io.ErrUnexpectedEOF, "magic"},
		{"bad magic", []byte("!<arch>X" + string(good[8:])), ErrFormat, "magic"},
		{"tar file", append([]byte("ustar\x0000"), make([]byte, 600)...), ErrFormat, "magic"},
		{"size not a number", patch(hdr+48, "12a       "), ErrFormat, "control.tar.xz"},
		{"negative size", patch(hdr+48, "-3        "), ErrFormat, "control.tar.xz"},
		{"size overflows int64", patch(hdr+48, "9999999999"), io.ErrUnexpectedEOF, "control.tar.xz"},
		{"plus sign in size", patch(hdr+48, "+3        "), ErrFormat, "control.tar.xz"},
		{"bad mode", patch(hdr+40, "9       "), ErrFormat, "control.tar.xz"},
		{"bad mtime", patch(hdr+16, "yesterday   "), ErrFormat, "control.tar.xz"},
		{"bad terminator", patch(hdr+58, "x\n"), ErrFormat, "control.tar.xz"},
		{"bad padding", patch(hdr+arHeaderSize+3, "X"), ErrFormat, "control.tar.xz"},
		{"truncated header", good[:hdr+30], io.ErrUnexpectedEOF, "debian-binary"},
		{"truncated member", good[:hdr+arHeaderSize+1], io.ErrUnexpectedEOF, "control.tar.xz"},
	}
	for _, c := range cases {
		_, err := readAllMembers(t, bytes.NewReader(c.raw))
		if c.name == "bad padding" && err == nil {
			// The bad padding only shows when Next looks past the member.
			t.Errorf("%s: no error", c.name)
			continue
		}
		if !errors.Is(err, c.target) {
			t.Errorf("%s: error %v, want one wrapping %v", c.name, err, c.target)
			continue
		}
		if !strings.Contains(err.Error(), c.member) {
			t.Errorf("%s: error %q does not name %q", c.name, err, c.member)
		}
	}
}

// TestArReaderSticky: once broken, the reader stays broken rather than
// resynchronising on bytes in the middle of a member.
func TestArReaderSticky(t *testing.T) {
	ar := NewArReader(strings.NewReader("garbage!"))
	_, err1 := ar.Next()
	_, err2 := ar.Next()
	if err1 == nil || err2 == nil || err1.Error() != err2.Error() {
		t.Errorf("Next twice on garbage: %v then %v; want the same error", err1, err2)
	}
}

// TestArReferenceTool reads what binutils' ar writes, and checks our test
// writer against it, so that both agree with the reference format.
func TestArReferenceTool(t *testing.T) {
	if _, err := exec.LookPath("ar"); err != nil {
		t.Skipf("ar (binutils) not installed: %v", err)
	}
	dir := t.TempDir()
	want := []arMember{
		{name: "debian-binary", data: []byte("2.0\n")},
		{name: "control.tar.gz", data: bytes.Repeat([]byte{0xff, 0}, 1001)},
		{name: "data.tar.xz", data: []byte("odd")},
	}
	var names []string
	for _, m := range want {
		if err := os.WriteFile(filepath.Join(dir, m.name), m.data, 0o644); err != nil {
			t.Fatal(err)
		}
		names = append(names, m.name)
	}
	cmd := exec.Command("ar", append([]string{"rcD", "x.a"}, names...)...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ar rcD: %v: %s", err, out)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "x.a"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := readAllMembers(t, bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("read ar's archive: %v", err)
	}
	if len(got) != len(want) {
		t.Fatalf("ar's archive: %d members, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].name != want[i].name || !bytes.Equal(got[i].data, want[i].data) {
			t.Errorf("ar's archive member %d: %q (%d bytes), want %q (%d bytes)", i, got[i].name, len(got[i].data), want[i].name, len(want[i].data))
		}
	}
	// ar t lists the members of the archive our test writer built.
	if err := os.WriteFile(filepath.Join(dir, "ours.a"), buildAr(want...), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd = exec.Command("ar", "t", "ours.a")
	cmd.Dir = dir
	list, err := cmd.Output()
	if err != nil {
		t.Fatalf("ar t on the test writer's archive: %v", err)
	}
	if got, want := strings.Fields(string(list)), names; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("ar t: %v, want %v", got, want)
	}
}

func FuzzArReader(f *testing.F) {
	f.Add(buildAr(arMember{name: "debian-binary", data: []byte("2.0\n")}, arMember{name: "x", data: []byte("abc")}))
	f.Add(buildAr())
	f.Add([]byte(arMagic + "debian-binary/  0           0     0     100644  99999999999`\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		ar := NewArReader(bytes.NewReader(raw))
		var total int64
		for i := 0; i < 1000; i++ {
			h, err := ar.Next()
			if err != nil {
				return
			}
			if h.Size < 0 {
				t.Fatalf("member %q: negative size %d accepted", h.Name, h.Size)
			}
			n, err := io.Copy(io.Discard, ar)
			total += n
			if err == nil && n != h.Size {
				t.Fatalf("member %q: read %d bytes without error, size %d", h.Name, n, h.Size)
			}
			if total > int64(len(raw)) {
				t.Fatalf("read %d member bytes from %d input bytes", total, len(raw))
			}
		}
	})
}
