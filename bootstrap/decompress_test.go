package bootstrap

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	"jailmgr/debian/compress"
)

func xzBytes(t *testing.T, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := compress.NewWriter("x.xz", &buf)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDecompressXZ(t *testing.T) {
	if xzPath() == "" {
		t.Log("no xz on this host: the pure-Go decoder is used")
	}
	// Decoded here in memory (a control.tar), and by xz (a data.tar).
	for _, n := range []int{300, 100000} {
		t.Run(fmt.Sprint(n*8, " bytes"), func(t *testing.T) { testDecompressXZ(t, n) })
	}
}

func testDecompressXZ(t *testing.T, n int) {
	want := bytes.Repeat([]byte("jailmgr "), n)
	packed := xzBytes(t, want)
	r, err := decompress("data.tar.xz", bytes.NewReader(packed))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("round trip: %d bytes, %v; want %d bytes", len(got), err, len(want))
	}

	// A truncated or altered stream is an error, not a short or wrong file.
	bad := bytes.Clone(packed)
	bad[len(bad)/2] ^= 1
	for what, z := range map[string][]byte{"truncated": packed[:len(packed)/2], "altered": bad} {
		r, err = decompress("data.tar.xz", bytes.NewReader(z))
		if err != nil {
			continue
		}
		if got, err := io.ReadAll(r); err == nil {
			t.Errorf("%s xz stream read without error (%d bytes)", what, len(got))
		}
		r.Close()
	}

	// Closing early stops the decoder.
	r, err = decompress("data.tar.xz", bytes.NewReader(packed))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	if _, err := io.ReadFull(r, buf); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("close after a partial read: %v", err)
	}
}
