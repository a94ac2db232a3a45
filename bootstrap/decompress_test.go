package bootstrap

import (
	"bytes"
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
	want := bytes.Repeat([]byte("jailmgr "), 100000)
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

	// A truncated stream is an error, not a short file.
	r, err = decompress("data.tar.xz", bytes.NewReader(packed[:len(packed)/2]))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(r); err == nil {
		t.Errorf("truncated xz stream read without error")
	}
	r.Close()

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
