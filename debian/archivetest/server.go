package archivetest

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
)

// Server serves an Archive over HTTP on loopback.
type Server struct {
	URL         string          // archive root, no trailing slash
	KeyringPath string          // binary public keyring of Signer
	Signer      *openpgp.Entity // the key that signed Release
	Archive     Archive         // the served archive, defaults filled in

	mu       sync.Mutex
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
	arch, err := a.withDefaults()
	if err != nil {
		t.Fatalf("archivetest: %v", err)
	}
	files, err := build(arch)
	if err != nil {
		t.Fatalf("archivetest: %v", err)
	}
	ring, err := PublicKeyring(arch.Signer)
	if err != nil {
		t.Fatalf("archivetest: %v", err)
	}
	keyring := filepath.Join(t.TempDir(), "archive-keyring.gpg")
	if err := os.WriteFile(keyring, ring, 0o644); err != nil {
		t.Fatalf("archivetest: write keyring: %v", err)
	}
	s := &Server{
		KeyringPath: keyring,
		Signer:      arch.Signer,
		Archive:     arch,
		files:       files,
		truncate:    map[string]truncation{},
		requests:    map[string]int{},
	}
	hs := httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	t.Cleanup(hs.Close)
	s.URL = hs.URL
	return s
}

// Replace serves a instead of the archive served so far, signed with the
// same key: what an archive looks like after its next publication.
func (s *Server) Replace(t testing.TB, a *Archive) {
	t.Helper()
	a.Signer = s.Signer
	arch, err := a.withDefaults()
	if err != nil {
		t.Fatalf("archivetest: %v", err)
	}
	files, err := build(arch)
	if err != nil {
		t.Fatalf("archivetest: %v", err)
	}
	s.mu.Lock()
	s.files, s.Archive = files, arch
	s.mu.Unlock()
}

func cleanURLPath(p string) string {
	return strings.TrimPrefix(p, "/")
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	p := cleanURLPath(r.URL.Path)
	s.mu.Lock()
	s.requests[p]++
	data, ok := s.files[p]
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
	http.ServeContent(cw, r, p, s.Archive.Date, bytes.NewReader(data))
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

// PoolPath is the served path of the .deb of the package named name, or ""
// if the archive has none.
func (s *Server) PoolPath(name string) string {
	for _, p := range s.Archive.Packages {
		if p.Name == name {
			return PoolPath(p, s.Archive.Architecture)
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
