package compress

import (
	"bytes"
	"errors"
	"os/exec"
	"testing"
)

// xzTool compresses data with the xz tool and the given options, as
// dpkg-deb's liblzma would; xz-utils is a test dependency (.ci/run).
func xzTool(t testing.TB, data []byte, args ...string) []byte {
	t.Helper()
	if _, err := exec.LookPath("xz"); err != nil {
		t.Fatalf("the xz tool is needed for this test (apt-get install xz-utils): %v", err)
	}
	cmd := exec.Command("xz", append([]string{"-c"}, args...)...)
	cmd.Stdin = bytes.NewReader(data)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("xz %v: %v", args, err)
	}
	return out
}

func TestDecodeSmallXZ(t *testing.T) {
	inputs := map[string][]byte{
		"empty":  {},
		"byte":   {'x'},
		"text":   payload(3000, 1),
		"100KiB": payload(100<<10, 2),
		"random": randomBytes(20000),
	}
	for name, in := range inputs {
		for _, args := range [][]string{{"-6"}, {"-0"}, {"-9e"}, {"--check=none"}, {"--check=crc32"}, {"--check=sha256"}} {
			z := xzTool(t, in, args...)
			got, err := DecodeSmallXZ(z, 128<<10)
			if err != nil || !bytes.Equal(got, in) {
				t.Errorf("%s, xz %v: %d bytes, %v; want the %d bytes put in", name, args, len(got), err, len(in))
			}
		}
		// Our own writer's streams too.
		if got, err := DecodeSmallXZ(compressWith(t, "x.xz", in), 128<<10); err != nil || !bytes.Equal(got, in) {
			t.Errorf("%s, NewWriter: %d bytes, %v", name, len(got), err)
		}
	}
}

// What dpkg-deb does not write is left to the other decoders, untouched.
func TestDecodeSmallXZDeclines(t *testing.T) {
	in := payload(50000, 3)
	one := xzTool(t, in, "-6")
	cases := map[string][]byte{
		"over the limit": one, // limit below
		"two blocks":     xzTool(t, in, "--block-size=10000"),
		"BCJ filter":     xzTool(t, in, "--x86", "--lzma2"),
		"two streams":    append(append([]byte{}, one...), one...),
		"stream padding": append(append([]byte{}, one...), 0, 0, 0, 0),
		"not xz":         compressWith(t, "x.gz", in),
		"lzma alone":     xzTool(t, in, "--format=lzma"),
	}
	for name, z := range cases {
		limit := 128 << 10
		if name == "over the limit" {
			limit = len(in) - 1
		}
		if _, err := DecodeSmallXZ(z, limit); !errors.Is(err, ErrNotSmall) {
			t.Errorf("%s: %v, want ErrNotSmall", name, err)
		}
	}
	if _, err := DecodeSmallXZ(one, len(in)); err != nil {
		t.Errorf("at exactly the limit: %v", err)
	}
}

// A changed byte anywhere is an error or a decline, never other data.
func TestDecodeSmallXZCorrupt(t *testing.T) {
	in := payload(4000, 4)
	for _, check := range []string{"crc32", "crc64", "sha256"} {
		z := xzTool(t, in, "--check="+check)
		for i := range z {
			bad := bytes.Clone(z)
			bad[i] ^= 0x10
			// The check (or a header's CRC) catches it; a byte the
			// format does not protect may change only to the same data.
			got, err := DecodeSmallXZ(bad, 128<<10)
			if err == nil && !bytes.Equal(got, in) {
				t.Errorf("check %s, byte %d of %d changed: decoded %d bytes of other data without an error", check, i, len(z), len(got))
			}
		}
		for n := 0; n < len(z); n += 7 {
			if _, err := DecodeSmallXZ(z[:n], 128<<10); err == nil {
				t.Errorf("check %s, cut to %d of %d bytes: no error", check, n, len(z))
			}
		}
	}
}

func FuzzDecodeSmallXZ(f *testing.F) {
	f.Add(compressWith(f, "x.xz", payload(2000, 5)))
	f.Add(compressWith(f, "x.xz", nil))
	f.Fuzz(func(t *testing.T, z []byte) {
		got, err := DecodeSmallXZ(z, 1<<20)
		if err != nil {
			return
		}
		// What it takes, the full decoder reads the same.
		want, err := decompress("x.xz", bytes.NewReader(z))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("DecodeSmallXZ gave %d bytes; NewReader %d bytes, %v", len(got), len(want), err)
		}
	})
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7919 ^ i>>3*31)
	}
	return b
}
