package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeArchive is an upstream that counts the requests for each path.
type fakeArchive struct {
	files map[string]string
	mu    sync.Mutex
	count map[string]int
	delay time.Duration
}

func (a *fakeArchive) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.count[r.URL.EscapedPath()]++
	a.mu.Unlock()
	time.Sleep(a.delay)
	switch body, ok := a.files[r.URL.Path]; {
	case r.URL.Path == "/debian/broken":
		w.Header().Set("Content-Length", "100")
		io.WriteString(w, "short") // the connection closes after 5 of 100 bytes
	case r.URL.Path == "/debian/error":
		http.Error(w, "overloaded", http.StatusServiceUnavailable)
	case !ok:
		http.NotFound(w, r)
	default:
		w.Header().Set("Last-Modified", "Sat, 01 Jan 2022 00:00:00 GMT")
		io.WriteString(w, body)
	}
}

func (a *fakeArchive) requests(p string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.count[p]
}

func newTestMirror(t *testing.T) (*fakeArchive, *httptest.Server, string) {
	t.Helper()
	arch := &fakeArchive{
		files: map[string]string{
			"/debian/dists/bookworm/InRelease":                              "signed release",
			"/debian/dists/bookworm/main/binary-amd64/Packages.xz":          "packages",
			"/debian/pool/main/g/gcc/libgcc-s1_12.2.0-14+deb12u1_amd64.deb": "a deb",
			"/debian/pool/main/h/hello/hello_2.10~rc1_amd64.deb":            strings.Repeat("0123456789", 1000),
		},
		count: map[string]int{},
	}
	up := httptest.NewServer(arch)
	t.Cleanup(up.Close)
	base, err := url.Parse(up.URL + "/debian")
	if err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	root, err := os.OpenRoot(cache)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	srv := httptest.NewServer(newMirror(root, upstreams{"debian": base}, io.Discard))
	t.Cleanup(srv.Close)
	return arch, srv, cache
}

func get(t *testing.T, method, u string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func TestFetchesOnceThenServesFromDisk(t *testing.T) {
	arch, srv, cache := newTestMirror(t)
	for _, p := range []string{
		"/dists/bookworm/InRelease",
		"/dists/bookworm/main/binary-amd64/Packages.xz",
		"/pool/main/g/gcc/libgcc-s1_12.2.0-14+deb12u1_amd64.deb",
	} {
		want := arch.files["/debian"+p]
		for i := range 3 {
			resp, body := get(t, http.MethodGet, srv.URL+"/debian"+p)
			if resp.StatusCode != http.StatusOK || body != want {
				t.Fatalf("GET %s #%d = %s %q, want 200 %q", p, i, resp.Status, body, want)
			}
		}
		if n := arch.requests("/debian" + p); n != 1 {
			t.Errorf("upstream saw %d requests for %s, want 1", n, p)
		}
		onDisk, err := os.ReadFile(filepath.Join(cache, "debian", filepath.FromSlash(p)))
		if err != nil || string(onDisk) != want {
			t.Errorf("cache file for %s = %q, %v; want %q", p, onDisk, err, want)
		}
	}
	if n := arch.requests("/debian/pool/main/g/gcc/libgcc-s1_12.2.0-14+deb12u1_amd64.deb"); n != 1 {
		t.Errorf("'+' in a pool name was not passed through unescaped: %d requests", n)
	}
	leftovers, _ := os.ReadDir(filepath.Join(cache, tmpDir))
	if len(leftovers) != 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}
}

func TestHeadRangeAndConditional(t *testing.T) {
	arch, srv, _ := newTestMirror(t)
	u := srv.URL + "/debian/pool/main/h/hello/hello_2.10~rc1_amd64.deb"
	resp, body := get(t, http.MethodHead, u)
	if resp.StatusCode != http.StatusOK || body != "" || resp.ContentLength != 10000 {
		t.Fatalf("HEAD = %s, %d bytes body, Content-Length %d; want 200, 0, 10000", resp.Status, len(body), resp.ContentLength)
	}
	resp, body = get(t, http.MethodGet, u, "Range", "bytes=10-14")
	if resp.StatusCode != http.StatusPartialContent || body != "01234" {
		t.Fatalf("Range GET = %s %q, want 206 %q", resp.Status, body, "01234")
	}
	if lm := resp.Header.Get("Last-Modified"); lm != "Sat, 01 Jan 2022 00:00:00 GMT" {
		t.Errorf("Last-Modified = %q, want the upstream's", lm)
	}
	resp, _ = get(t, http.MethodGet, u, "If-Modified-Since", "Sat, 01 Jan 2022 00:00:00 GMT")
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("conditional GET = %s, want 304", resp.Status)
	}
	if n := arch.requests("/debian/pool/main/h/hello/hello_2.10~rc1_amd64.deb"); n != 1 {
		t.Errorf("upstream saw %d requests, want 1", n)
	}
}

func TestNotFoundAndErrors(t *testing.T) {
	arch, srv, cache := newTestMirror(t)
	for range 2 {
		if resp, _ := get(t, http.MethodGet, srv.URL+"/debian/dists/bookworm/Release.gpg"); resp.StatusCode != http.StatusNotFound {
			t.Errorf("missing upstream file = %s, want 404", resp.Status)
		}
	}
	if n := arch.requests("/debian/dists/bookworm/Release.gpg"); n != 1 {
		t.Errorf("a 404 was asked upstream %d times, want 1", n)
	}
	if resp, _ := get(t, http.MethodGet, srv.URL+"/debian/error"); resp.StatusCode != http.StatusBadGateway {
		t.Errorf("upstream 503 = %s, want 502", resp.Status)
	}
	if resp, _ := get(t, http.MethodGet, srv.URL+"/debian/broken"); resp.StatusCode != http.StatusBadGateway {
		t.Errorf("truncated upstream body = %s, want 502", resp.Status)
	}
	for _, bad := range []string{"broken", "error", "dists/bookworm/Release.gpg"} {
		if _, err := os.Stat(filepath.Join(cache, "debian", bad)); err == nil {
			t.Errorf("%s was cached", bad)
		}
	}
	leftovers, _ := os.ReadDir(filepath.Join(cache, tmpDir))
	if len(leftovers) != 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}
}

func TestRefusesOddRequests(t *testing.T) {
	arch, srv, _ := newTestMirror(t)
	get(t, http.MethodGet, srv.URL+"/debian/dists/bookworm/InRelease") // creates the folder dists/bookworm
	for _, p := range []string{
		"/ubuntu/dists/focal/InRelease", // no such upstream
		"/.tmp/x",
		"/debian/",
		"/debian/dists/bookworm",  // a folder in the cache
		"/debian/dists/bookworm/", // no listings
		"/debian/dists//bookworm/InRelease",
		"/debian/dists/%2e%2e/%2e%2e/etc/passwd",
	} {
		resp, _ := get(t, http.MethodGet, srv.URL+p)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s = %s, want 404", p, resp.Status)
		}
	}
	if resp, _ := get(t, http.MethodPost, srv.URL+"/debian/dists/bookworm/InRelease"); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST = %s, want 405", resp.Status)
	}
	if n := arch.requests("/debian/etc/passwd") + arch.requests("/etc/passwd"); n != 0 {
		t.Errorf("a path escaping the upstream reached it")
	}
}

func TestConcurrentMissesFetchOnce(t *testing.T) {
	arch, srv, _ := newTestMirror(t)
	arch.delay = 50 * time.Millisecond
	p := "/debian/pool/main/h/hello/hello_2.10~rc1_amd64.deb"
	var wg sync.WaitGroup
	var bad atomic.Int32
	for range 8 {
		wg.Go(func() {
			resp, err := http.Get(srv.URL + p)
			if err != nil {
				bad.Add(1)
				return
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK || string(body) != arch.files[p] {
				bad.Add(1)
			}
		})
	}
	wg.Wait()
	if bad.Load() != 0 {
		t.Errorf("%d of 8 concurrent GETs failed", bad.Load())
	}
	if n := arch.requests(p); n != 1 {
		t.Errorf("upstream saw %d requests, want 1", n)
	}
}

func TestUpstreamFlag(t *testing.T) {
	u := upstreams{}
	for _, ok := range []string{"debian=http://example.invalid/debian", "ubuntu=https://example.invalid/ubuntu/"} {
		if err := u.Set(ok); err != nil {
			t.Errorf("Set(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"debian", "=http://x/", "a/b=http://x/", ".tmp=http://x/", "x=ftp://x/", "x=/local", "debian=http://x/"} {
		if err := u.Set(bad); err == nil {
			t.Errorf("Set(%q) = nil, want an error", bad)
		}
	}
}

// TestRun starts the whole command on port 0, reads its address from the
// first line, fetches through it and stops it as SIGTERM would.
func TestRun(t *testing.T) {
	arch, _, _ := newTestMirror(t)
	up := httptest.NewServer(arch)
	defer up.Close()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	var stderr bytes.Buffer
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, []string{"-cache", t.TempDir(), "-upstream", "debian=" + up.URL + "/debian"}, pw, &stderr)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "http://127.0.0.1:") {
		t.Fatalf("first line = %q, %v; want http://127.0.0.1:PORT", line, err)
	}
	go io.Copy(io.Discard, pr)
	base := strings.TrimSpace(line)
	if resp, body := get(t, http.MethodGet, base+"/debian/dists/bookworm/InRelease"); resp.StatusCode != http.StatusOK || body != "signed release" {
		t.Errorf("GET through run = %s %q", resp.Status, body)
	}
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("run = %v, want nil after shutdown", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after its context was cancelled")
	}
	if !strings.Contains(stderr.String(), "1 fetched upstream") {
		t.Errorf("stderr lacks the closing summary: %q", stderr.String())
	}
	if err := run(context.Background(), []string{"-cache", t.TempDir()}, io.Discard, io.Discard); err == nil {
		t.Error("run without -upstream = nil, want an error")
	}
}
