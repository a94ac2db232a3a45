package archivetest

import (
	"bytes"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
)

// Server serves one Archive, or several suites of one archive (a release
// and its pockets: dists/bookworm, dists/bookworm-updates...), over HTTP
// on loopback.
type Server struct {
	URL         string          // archive root, no trailing slash
	KeyringPath string          // binary public keyring of Signer
	Signer      *openpgp.Entity // the key that signed every Release
	Archive     Archive         // the first suite served, defaults filled in
	// Archives are all the suites served, in the order given.
	Archives []Archive

	mu       sync.Mutex
	built    map[string]map[string][]byte // each suite's tree, by suite
	files    map[string][]byte
	truncate map[string]truncation
	requests map[string]int
	bytes    int64
}

type truncation struct {
	n     int
	times int // requests left to truncate; -1 is every request
}

// Serve builds a and serves it on 127.0.0.1 until the test ends. It fails
// the test if the archive cannot be built.
func Serve(t testing.TB, a *Archive) *Server {
	t.Helper()
	return ServeSuites(t, a)
}

// ServeSuites serves several suites from one archive root, as a mirror
// serves a release beside its updates pocket. Every suite is signed with
// the first one's Signer (a fresh key when it has none). The suites' pools
// are one tree: a path two suites both build must come out the same. It
// fails the test if an archive cannot be built.
func ServeSuites(t testing.TB, archives ...*Archive) *Server {
	t.Helper()
	if len(archives) == 0 {
		t.Fatalf("archivetest: ServeSuites needs at least one archive")
	}
	s := &Server{
		built:    map[string]map[string][]byte{},
		truncate: map[string]truncation{},
		requests: map[string]int{},
	}
	for _, a := range archives {
		b := *a
		if s.Signer != nil {
			b.Signer = s.Signer
		}
		arch, err := b.withDefaults()
		if err != nil {
			t.Fatalf("archivetest: %v", err)
		}
		if _, dup := s.built[arch.Suite]; dup {
			t.Fatalf("archivetest: suite %s is served twice", arch.Suite)
		}
		files, err := build(arch)
		if err != nil {
			t.Fatalf("archivetest: %v", err)
		}
		s.Signer = arch.Signer
		s.built[arch.Suite] = files
		s.Archives = append(s.Archives, arch)
	}
	s.Archive = s.Archives[0]
	files, err := merge(s.Archives, s.built)
	if err != nil {
		t.Fatalf("archivetest: %v", err)
	}
	s.files = files
	ring, err := PublicKeyring(s.Signer)
	if err != nil {
		t.Fatalf("archivetest: %v", err)
	}
	keyring := filepath.Join(t.TempDir(), "archive-keyring.gpg")
	if err := os.WriteFile(keyring, ring, 0o644); err != nil {
		t.Fatalf("archivetest: write keyring: %v", err)
	}
	s.KeyringPath = keyring
	hs := httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	t.Cleanup(hs.Close)
	s.URL = hs.URL
	return s
}

// merge joins the suites' trees into one, refusing a path that two suites
// build differently.
func merge(archives []Archive, built map[string]map[string][]byte) (map[string][]byte, error) {
	out := map[string][]byte{}
	from := map[string]string{}
	for _, a := range archives {
		for p, data := range built[a.Suite] {
			if old, ok := out[p]; ok && !bytes.Equal(old, data) {
				return nil, fmt.Errorf("%s is built differently by suites %s and %s", p, from[p], a.Suite)
			}
			out[p], from[p] = data, a.Suite
		}
	}
	return out, nil
}

// Replace serves a instead of the suite of the same name served so far
// (the first suite when a names none), signed with the same key: what an
// archive looks like after its next publication. The other suites stay.
func (s *Server) Replace(t testing.TB, a *Archive) {
	t.Helper()
	a.Signer = s.Signer
	if a.Suite == "" {
		a.Suite = s.Archive.Suite
	}
	arch, err := a.withDefaults()
	if err != nil {
		t.Fatalf("archivetest: %v", err)
	}
	files, err := build(arch)
	if err != nil {
		t.Fatalf("archivetest: %v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	archives := slices.Clone(s.Archives)
	i := slices.IndexFunc(archives, func(x Archive) bool { return x.Suite == arch.Suite })
	if i < 0 {
		archives = append(archives, arch)
	} else {
		archives[i] = arch
	}
	built := maps.Clone(s.built)
	built[arch.Suite] = files
	merged, err := merge(archives, built)
	if err != nil {
		t.Fatalf("archivetest: %v", err)
	}
	s.files, s.built, s.Archives, s.Archive = merged, built, archives, archives[0]
}

func cleanURLPath(p string) string {
	return strings.TrimPrefix(p, "/")
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	p := cleanURLPath(r.URL.Path)
	s.mu.Lock()
	s.requests[p]++
	data, ok := s.files[p]
	date := s.Archive.Date
	tr, truncated := s.truncate[p]
	if truncated && r.Method == http.MethodGet {
		if tr.times > 0 {
			tr.times--
			if tr.times == 0 {
				delete(s.truncate, p)
			} else {
				s.truncate[p] = tr
			}
		}
	}
	s.mu.Unlock()

	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if !ok {
		http.NotFound(w, r)
		return
	}
	cw := &countingWriter{ResponseWriter: w, s: s}
	if truncated && r.Method == http.MethodGet && tr.n < len(data) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.WriteHeader(http.StatusOK)
		cw.Write(data[:max(tr.n, 0)])
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		// Aborting the handler makes net/http close the connection, so the
		// client sees a short body, the way a broken download looks.
		panic(http.ErrAbortHandler)
	}
	http.ServeContent(cw, r, p, date, bytes.NewReader(data))
}

// countingWriter adds what the handler writes to Server.bytes.
type countingWriter struct {
	http.ResponseWriter
	s *Server
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.s.mu.Lock()
	c.s.bytes += int64(n)
	c.s.mu.Unlock()
	return n, err
}

// Tamper replaces the served bytes of path (relative to the archive root,
// e.g. "dists/stable/Release") with f of the current bytes, which are nil
// if the path is not served. Signatures are not redone. If f returns nil the
// path is no longer served.
func (s *Server) Tamper(path string, f func([]byte) []byte) {
	p := cleanURLPath(path)
	s.mu.Lock()
	defer s.mu.Unlock()
	var cur []byte
	if old, ok := s.files[p]; ok {
		cur = bytes.Clone(old)
	}
	if next := f(cur); next != nil {
		s.files[p] = next
	} else {
		delete(s.files, p)
	}
}

// Truncate makes every GET of path stop after n bytes while announcing the
// full Content-Length, then close the connection. A negative n serves the
// path whole again.
func (s *Server) Truncate(path string, n int) {
	s.TruncateTimes(path, n, -1)
}

// TruncateTimes is Truncate for the next times GETs of path only, after
// which the path is served whole: for testing retries.
func (s *Server) TruncateTimes(path string, n, times int) {
	p := cleanURLPath(path)
	s.mu.Lock()
	defer s.mu.Unlock()
	if n < 0 || times == 0 {
		delete(s.truncate, p)
		return
	}
	s.truncate[p] = truncation{n: n, times: times}
}

// File returns the bytes served at path, and whether it is served.
func (s *Server) File(path string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	data, ok := s.files[cleanURLPath(path)]
	return bytes.Clone(data), ok
}

// PoolPath is the served path of the .deb of the package named name (in
// the first suite that has it), or "" if the archive has none.
func (s *Server) PoolPath(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.Archives {
		for _, p := range a.Packages {
			if p.Name == name {
				return PoolPath(p, a.Architecture)
			}
		}
	}
	return ""
}

// BytesServed is the number of response body bytes sent so far.
func (s *Server) BytesServed() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes
}

// Requests is the number of requests (any method, any outcome) for path.
func (s *Server) Requests(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[cleanURLPath(path)]
}
