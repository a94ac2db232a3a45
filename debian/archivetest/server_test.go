package archivetest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/klauspost/compress/gzip"
	"github.com/ulikunitz/xz"
)

func testArchive() *Archive {
	return &Archive{
		Suite:        "testing",
		Codename:     "trixie",
		Architecture: "amd64",
		ValidUntil:   time.Now().Add(24 * time.Hour),
		Packages: []Package{
			fixturePackage("gz"),
			{Name: "libfoo1", Version: "1.0-1", Compression: "zst", Files: []File{{Path: "/usr/lib/libfoo.so.1", Data: []byte("elf")}}},
			{Name: "evil", Version: "6.6.6", RawData: []byte("!<arch>\nhostile bytes")},
			{Name: "contrib-tool", Component: "contrib", Architecture: "all"},
		},
	}
}

func get(t *testing.T, s *Server, path string) []byte {
	t.Helper()
	resp, err := http.Get(s.URL + "/" + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", path, resp.Status)
	}
	return body
}

func status(t *testing.T, s *Server, method, path string) int {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+"/"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// parseFields reads one deb822 paragraph per blank-line-separated block.
func parseFields(t *testing.T, data []byte) []map[string]string {
	t.Helper()
	paras, err := parseParagraphs(data, "test")
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]string
	for _, p := range paras {
		m := map[string]string{}
		for _, f := range p {
			m[f.name] = f.value
		}
		out = append(out, m)
	}
	return out
}

func hexSHA256(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
func hexMD5(b []byte) string    { s := md5.Sum(b); return hex.EncodeToString(s[:]) }

// TestReleaseMatchesServedFiles walks the archive as apt would: every
// index Release lists has the listed size and hashes, the compressed
// indexes hold the plain one, and every .deb matches its Packages entry.
func TestReleaseMatchesServedFiles(t *testing.T) {
	s := Serve(t, testArchive())
	rel := parseFields(t, get(t, s, "dists/testing/Release"))[0]
	for name, want := range map[string]string{"Suite": "testing", "Codename": "trixie", "Architectures": "amd64",
		"Components": "main contrib", "Origin": "jailmgr"} {
		if rel[name] != want {
			t.Errorf("Release %s = %q, want %q", name, rel[name], want)
		}
	}
	for _, name := range []string{"Date", "Valid-Until"} {
		if _, err := time.Parse(time.RFC1123, rel[name]); err != nil {
			t.Errorf("Release %s: %v", name, err)
		}
	}
	listed := map[string]bool{}
	for _, algo := range []string{"SHA256", "MD5Sum"} {
		lines := strings.Split(strings.TrimPrefix(rel[algo], "\n"), "\n")
		if len(lines) != 6 {
			t.Errorf("Release %s lists %d files, want 6 (Packages, .gz, .xz for main and contrib):\n%s", algo, len(lines), rel[algo])
		}
		for _, l := range lines {
			f := strings.Fields(l)
			if len(f) != 3 {
				t.Fatalf("Release %s line %q: want hash, size, path", algo, l)
			}
			body := get(t, s, "dists/testing/"+f[2])
			sum := hexSHA256(body)
			if algo == "MD5Sum" {
				sum = hexMD5(body)
			}
			if sum != f[0] || strconv.Itoa(len(body)) != f[1] {
				t.Errorf("%s: served %s %d, Release says %s %s", f[2], sum, len(body), f[0], f[1])
			}
			listed[f[2]] = true
		}
	}
	if !listed["main/binary-amd64/Packages.xz"] || !listed["contrib/binary-amd64/Packages.gz"] {
		t.Errorf("Release does not list the expected indexes: %v", listed)
	}

	plain := get(t, s, "dists/testing/main/binary-amd64/Packages")
	zr, err := gzip.NewReader(bytes.NewReader(get(t, s, "dists/testing/main/binary-amd64/Packages.gz")))
	if err != nil {
		t.Fatal(err)
	}
	if gz, err := io.ReadAll(zr); err != nil || !bytes.Equal(gz, plain) {
		t.Errorf("Packages.gz does not decompress to Packages (err %v)", err)
	}
	xr, err := xz.NewReader(bytes.NewReader(get(t, s, "dists/testing/main/binary-amd64/Packages.xz")))
	if err != nil {
		t.Fatal(err)
	}
	if x, err := io.ReadAll(xr); err != nil || !bytes.Equal(x, plain) {
		t.Errorf("Packages.xz does not decompress to Packages (err %v)", err)
	}

	pkgs := parseFields(t, plain)
	if len(pkgs) != 3 {
		t.Fatalf("main Packages has %d paragraphs, want 3:\n%s", len(pkgs), plain)
	}
	for _, p := range pkgs {
		deb := get(t, s, p["Filename"])
		if strconv.Itoa(len(deb)) != p["Size"] || hexSHA256(deb) != p["SHA256"] || hexMD5(deb) != p["MD5sum"] {
			t.Errorf("%s: served size %d sha256 %s md5 %s, Packages says %s %s %s",
				p["Filename"], len(deb), hexSHA256(deb), hexMD5(deb), p["Size"], p["SHA256"], p["MD5sum"])
		}
		if p["Filename"] != s.PoolPath(p["Package"]) {
			t.Errorf("%s: Filename %s, PoolPath %s", p["Package"], p["Filename"], s.PoolPath(p["Package"]))
		}
	}
	if got := pkgs[0]["Filename"]; got != "pool/main/h/hello/hello_2.10-3_amd64.deb" {
		t.Errorf("hello Filename = %q, want the pool path without epoch", got)
	}
	if got := pkgs[1]["Filename"]; got != "pool/main/libf/libfoo1/libfoo1_1.0-1_amd64.deb" {
		t.Errorf("libfoo1 Filename = %q, want lib packages under a four-letter prefix", got)
	}
	if evil := get(t, s, pkgs[2]["Filename"]); string(evil) != "!<arch>\nhostile bytes" {
		t.Errorf("RawData package served as %q", evil)
	}
	contrib := parseFields(t, get(t, s, "dists/testing/contrib/binary-amd64/Packages"))
	if len(contrib) != 1 || contrib[0]["Architecture"] != "all" {
		t.Errorf("contrib Packages = %v, want contrib-tool for all", contrib)
	}
}

// TestSignaturesVerify checks InRelease and Release.gpg with go-crypto,
// and with gpgv when it is installed.
func TestSignaturesVerify(t *testing.T) {
	s := Serve(t, testArchive())
	release := get(t, s, "dists/testing/Release")
	inRelease := get(t, s, "dists/testing/InRelease")
	sig := get(t, s, "dists/testing/Release.gpg")

	f, err := os.Open(s.KeyringPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	keyring, err := openpgp.ReadKeyRing(f)
	if err != nil {
		t.Fatalf("keyring is not a binary OpenPGP keyring: %v", err)
	}
	if _, err := openpgp.CheckArmoredDetachedSignature(keyring, bytes.NewReader(release), bytes.NewReader(sig), nil); err != nil {
		t.Errorf("Release.gpg does not verify: %v", err)
	}
	block, _ := clearsign.Decode(inRelease)
	if block == nil {
		t.Fatalf("InRelease is not clearsigned:\n%s", inRelease)
	}
	if !bytes.Equal(block.Plaintext, release) {
		t.Errorf("InRelease content differs from Release:\n%s\n---\n%s", block.Plaintext, release)
	}
	if _, err := block.VerifySignature(keyring, nil); err != nil {
		t.Errorf("InRelease does not verify: %v", err)
	}

	gpgv := lookTool(t, "gpgv")
	dir := t.TempDir()
	for name, data := range map[string][]byte{"Release": release, "InRelease": inRelease, "Release.gpg": sig} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gpgvCheck(t, gpgv, s.KeyringPath, true, filepath.Join(dir, "InRelease"))
	gpgvCheck(t, gpgv, s.KeyringPath, true, filepath.Join(dir, "Release.gpg"), filepath.Join(dir, "Release"))

	// The check must be able to fail: a changed Release no longer verifies.
	s.Tamper("dists/testing/Release", func(b []byte) []byte { return bytes.Replace(b, []byte("testing"), []byte("testinh"), 1) })
	if err := os.WriteFile(filepath.Join(dir, "Release"), get(t, s, "dists/testing/Release"), 0o644); err != nil {
		t.Fatal(err)
	}
	gpgvCheck(t, gpgv, s.KeyringPath, false, filepath.Join(dir, "Release.gpg"), filepath.Join(dir, "Release"))
}

func gpgvCheck(t *testing.T, gpgv, keyring string, wantOK bool, args ...string) {
	t.Helper()
	cmd := exec.Command(gpgv, append([]string{"--keyring", keyring}, args...)...)
	cmd.Env = append(os.Environ(), "GNUPGHOME="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if wantOK && err != nil {
		t.Errorf("gpgv %v: %v\n%s", args, err, out)
	}
	if !wantOK && err == nil {
		t.Errorf("gpgv %v accepted a tampered file:\n%s", args, out)
	}
}

func TestNoInReleaseAndUnsigned(t *testing.T) {
	a := testArchive()
	a.NoInRelease = true
	s := Serve(t, a)
	if c := status(t, s, http.MethodGet, "dists/testing/InRelease"); c != http.StatusNotFound {
		t.Errorf("NoInRelease: InRelease status %d, want 404", c)
	}
	if c := status(t, s, http.MethodGet, "dists/testing/Release.gpg"); c != http.StatusOK {
		t.Errorf("NoInRelease: Release.gpg status %d, want 200", c)
	}

	a = testArchive()
	a.Unsigned = true
	s = Serve(t, a)
	for _, p := range []string{"dists/testing/InRelease", "dists/testing/Release.gpg"} {
		if c := status(t, s, http.MethodGet, p); c != http.StatusNotFound {
			t.Errorf("Unsigned: %s status %d, want 404", p, c)
		}
	}
	if c := status(t, s, http.MethodGet, "dists/testing/Release"); c != http.StatusOK {
		t.Errorf("Unsigned: Release status %d, want 200", c)
	}
	if c := status(t, s, http.MethodPost, "dists/testing/Release"); c != http.StatusMethodNotAllowed {
		t.Errorf("POST status %d, want 405", c)
	}
}

func TestArchiveErrors(t *testing.T) {
	a := testArchive()
	a.Components = []string{"main"} // contrib-tool is in contrib
	if _, err := a.withDefaults(); err == nil {
		t.Error("package in a component the archive lacks: no error")
	}
	a = testArchive()
	a.Packages = append(a.Packages, a.Packages[1])
	a2, err := a.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := build(a2); err == nil {
		t.Error("same package twice: no error")
	}
}

func TestTamper(t *testing.T) {
	s := Serve(t, testArchive())
	const p = "dists/testing/main/binary-amd64/Packages.xz"
	s.Tamper(p, func(b []byte) []byte { return append(b, "junk"...) })
	orig, _ := s.File(p)
	if got := get(t, s, p); !bytes.Equal(got, orig) || !bytes.HasSuffix(got, []byte("junk")) {
		t.Errorf("tampered file served as %q...", got[max(0, len(got)-8):])
	}
	s.Tamper(p, func([]byte) []byte { return nil })
	if c := status(t, s, http.MethodGet, p); c != http.StatusNotFound {
		t.Errorf("removed file: status %d, want 404", c)
	}
	s.Tamper("/extra", func(b []byte) []byte {
		if b != nil {
			t.Errorf("Tamper of an unserved path got %q, want nil", b)
		}
		return []byte("new")
	})
	if got := get(t, s, "extra"); string(got) != "new" {
		t.Errorf("added file served as %q", got)
	}
}

func TestTruncate(t *testing.T) {
	s := Serve(t, testArchive())
	p := s.PoolPath("hello")
	full, ok := s.File(p)
	if !ok {
		t.Fatalf("%s not served", p)
	}
	s.TruncateTimes(p, 10, 1)

	resp, err := http.Get(s.URL + "/" + p)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("reading a truncated download: err %v, want unexpected EOF", err)
	}
	if resp.ContentLength != int64(len(full)) || len(body) != 10 {
		t.Errorf("truncated download: Content-Length %d, body %d; want %d and 10", resp.ContentLength, len(body), len(full))
	}
	if got := get(t, s, p); !bytes.Equal(got, full) {
		t.Errorf("after TruncateTimes(…, 1) the second GET got %d bytes, want %d", len(got), len(full))
	}

	s.Truncate(p, 0)
	for range 2 {
		if resp, err := http.Get(s.URL + "/" + p); err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil {
				t.Error("Truncate(p, 0): download completed")
			}
		}
	}
	s.Truncate(p, -1)
	get(t, s, p)
	if n := s.Requests(p); n != 5 {
		t.Errorf("Requests(%s) = %d, want 5", p, n)
	}
}

func TestHeadRangeAndCounters(t *testing.T) {
	s := Serve(t, testArchive())
	p := "dists/testing/Release"
	full, _ := s.File(p)
	before := s.BytesServed()
	req, _ := http.NewRequest(http.MethodHead, s.URL+"/"+p, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ContentLength != int64(len(full)) {
		t.Errorf("HEAD: %s, Content-Length %d; want 200 and %d", resp.Status, resp.ContentLength, len(full))
	}
	if s.BytesServed() != before {
		t.Errorf("HEAD counted %d body bytes", s.BytesServed()-before)
	}

	req, _ = http.NewRequest(http.MethodGet, s.URL+"/"+p, nil)
	req.Header.Set("Range", "bytes=5-")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, full[5:]) {
		t.Errorf("Range GET: %s, %d bytes; want 206 and %d", resp.Status, len(body), len(full)-5)
	}

	// Concurrent downloads over keep-alive connections all get counted.
	before = s.BytesServed()
	var wg sync.WaitGroup
	var mu sync.Mutex
	reused := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 4 {
				trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
					if i.Reused {
						mu.Lock()
						reused++
						mu.Unlock()
					}
				}}
				req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodGet, s.URL+"/"+p, nil)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	if got, want := s.BytesServed()-before, int64(32*len(full)); got != want {
		t.Errorf("BytesServed grew by %d, want %d", got, want)
	}
	if n := s.Requests("/" + p); n != 34 {
		t.Errorf("Requests = %d, want 34", n)
	}
	if reused == 0 {
		t.Error("no request reused a keep-alive connection")
	}
}

func TestKeyringIsBinary(t *testing.T) {
	s := Serve(t, &Archive{})
	data, err := os.ReadFile(s.KeyringPath)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.HasPrefix(data, []byte("-----BEGIN")) || len(data) == 0 || data[0]&0x80 == 0 {
		t.Errorf("keyring does not start with an OpenPGP packet: %q", data[:min(16, len(data))])
	}
	// An empty archive still has a stable Suite and an empty main index.
	if p := parseFields(t, get(t, s, "dists/stable/Release")); p[0]["Components"] != "main" {
		t.Errorf("default Components = %q", p[0]["Components"])
	}
	sc := bufio.NewScanner(bytes.NewReader(get(t, s, "dists/stable/main/binary-"+hostArch()+"/Packages")))
	if sc.Scan() {
		t.Errorf("empty archive lists a package: %q", sc.Text())
	}
}

func TestServeSuites(t *testing.T) {
	rel := &Archive{Suite: "bookworm", Architecture: "amd64", Packages: []Package{{Name: "hello", Version: "1.0"}}}
	upd := &Archive{Suite: "bookworm-updates", Architecture: "amd64", Packages: []Package{{Name: "hello", Version: "1.1"}}}
	s := ServeSuites(t, rel, upd)
	if len(s.Archives) != 2 || s.Archive.Suite != "bookworm" {
		t.Fatalf("Archives = %d, Archive = %s", len(s.Archives), s.Archive.Suite)
	}
	f, err := os.Open(s.KeyringPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	keyring, err := openpgp.ReadKeyRing(f)
	if err != nil {
		t.Fatal(err)
	}
	// Both suites are served, each signed with the one key.
	for _, suite := range []string{"bookworm", "bookworm-updates"} {
		block, _ := clearsign.Decode(get(t, s, "dists/"+suite+"/InRelease"))
		if block == nil {
			t.Fatalf("%s: InRelease is not clearsigned", suite)
		}
		if _, err := block.VerifySignature(keyring, nil); err != nil {
			t.Errorf("%s: InRelease does not verify with the server's keyring: %v", suite, err)
		}
		if !bytes.Contains(block.Plaintext, []byte("Suite: "+suite+"\n")) {
			t.Errorf("%s: Release names another suite:\n%s", suite, block.Plaintext)
		}
	}
	for _, v := range []string{"1.0", "1.1"} {
		get(t, s, "pool/main/h/hello/hello_"+v+"_amd64.deb")
	}
	if s.PoolPath("hello") != "pool/main/h/hello/hello_1.0_amd64.deb" {
		t.Errorf("PoolPath(hello) = %s, want the first suite's", s.PoolPath("hello"))
	}

	// Replace publishes one suite anew and leaves the other alone.
	s.Replace(t, &Archive{Suite: "bookworm-updates", Architecture: "amd64", Packages: []Package{{Name: "hello", Version: "1.2"}}})
	get(t, s, "pool/main/h/hello/hello_1.2_amd64.deb")
	get(t, s, "pool/main/h/hello/hello_1.0_amd64.deb")
	if c := status(t, s, http.MethodGet, "pool/main/h/hello/hello_1.1_amd64.deb"); c != http.StatusNotFound {
		t.Errorf("replaced suite's old package: status %d, want 404", c)
	}
	if !bytes.Contains(get(t, s, "dists/bookworm-updates/Release"), []byte(" main/binary-amd64/Packages")) {
		t.Error("replaced suite has no Release")
	}

	// A pool path that two suites build differently is refused.
	if _, err := merge([]Archive{{Suite: "a"}, {Suite: "b"}}, map[string]map[string][]byte{
		"a": {"pool/x.deb": []byte("1")}, "b": {"pool/x.deb": []byte("2")},
	}); err == nil {
		t.Error("conflicting pool paths: no error")
	}
}
