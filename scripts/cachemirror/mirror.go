package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// tmpDir holds downloads in progress, inside the cache so that the final
// rename stays on one filesystem. Upstream names cannot start with a dot, so no
// request maps into it.
const tmpDir = ".tmp"

var (
	errNotFound = errors.New("cachemirror: not found upstream")
	errIsDir    = errors.New("cachemirror: is a folder")
)

// mirror serves /NAME/PATH from its cache, filling the cache from the upstream
// NAME on a miss.
type mirror struct {
	root   *os.Root
	ups    upstreams
	client *http.Client
	log    io.Writer

	mu       sync.Mutex
	inflight map[string]*download // one upstream fetch per file, whoever asks
	missing  map[string]bool      // upstream answered 404 or 410

	hits, misses, bytes atomic.Int64
}

type download struct {
	done chan struct{}
	err  error
}

func newMirror(root *os.Root, ups upstreams, log io.Writer) *mirror {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 16
	t.ResponseHeaderTimeout = time.Minute
	return &mirror{
		root:     root,
		ups:      ups,
		client:   &http.Client{Transport: t},
		log:      log,
		inflight: map[string]*download{},
		missing:  map[string]bool{},
	}
}

func (m *mirror) stats() (hits, misses, bytes int64) {
	return m.hits.Load(), m.misses.Load(), m.bytes.Load()
}

func (m *mirror) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "only GET and HEAD", http.StatusMethodNotAllowed)
		return
	}
	name, rel, ok := m.split(r.URL.Path)
	if !ok {
		http.NotFound(w, r)
		return
	}
	key := name + "/" + rel
	f, err := m.open(key)
	if err == nil {
		m.hits.Add(1)
	} else if errors.Is(err, fs.ErrNotExist) {
		// The fetch outlives a client that gives up: others may wait on it.
		if err = m.fetchOnce(context.WithoutCancel(r.Context()), name, rel); err == nil {
			f, err = m.open(key)
		}
	}
	switch {
	case errors.Is(err, errNotFound), errors.Is(err, errIsDir):
		http.NotFound(w, r)
		return
	case err != nil:
		fmt.Fprintf(m.log, "cachemirror: %v\n", err)
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	http.ServeContent(w, r, path.Base(key), st.ModTime(), f)
}

// split maps a request path to an upstream name and a clean relative path,
// refusing anything that is not a plain file path (no "..", no empty or "."
// segments, no trailing slash).
func (m *mirror) split(p string) (name, rel string, ok bool) {
	name, rel, ok = strings.Cut(strings.TrimPrefix(p, "/"), "/")
	if !ok || m.ups[name] == nil || rel == "" {
		return "", "", false
	}
	for seg := range strings.SplitSeq(rel, "/") {
		if seg == "" || seg == "." || seg == ".." || strings.ContainsRune(seg, 0) {
			return "", "", false
		}
	}
	return name, rel, true
}

func (m *mirror) open(key string) (*os.File, error) {
	f, err := m.root.Open(key)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err == nil && st.IsDir() {
		err = errIsDir
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// fetchOnce fills the cache with NAME/REL, or waits for the fetch of it that
// is already under way.
func (m *mirror) fetchOnce(ctx context.Context, name, rel string) error {
	key := name + "/" + rel
	m.mu.Lock()
	if m.missing[key] {
		m.mu.Unlock()
		return errNotFound
	}
	if d, ok := m.inflight[key]; ok {
		m.mu.Unlock()
		<-d.done
		return d.err
	}
	d := &download{done: make(chan struct{})}
	m.inflight[key] = d
	m.mu.Unlock()

	// A fetch that finished between open and the lock above has left the file.
	if _, err := m.root.Stat(key); err == nil {
		d.err = nil
	} else {
		d.err = m.fetch(ctx, name, rel)
	}

	m.mu.Lock()
	delete(m.inflight, key)
	if errors.Is(d.err, errNotFound) {
		m.missing[key] = true
	}
	m.mu.Unlock()
	close(d.done)
	return d.err
}

// fetch downloads NAME/REL from its upstream into a temporary file and renames
// it into place, so that the cache only ever holds whole files.
func (m *mirror) fetch(ctx context.Context, name, rel string) (err error) {
	src := upstreamURL(m.ups[name].String(), rel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
	if err != nil {
		return fmt.Errorf("fetch %s: %w", src, err)
	}
	resp, err := m.client.Do(req)
	if err != nil {
		return fmt.Errorf("fetch %s: %w", src, err)
	}
	defer resp.Body.Close()
	fmt.Fprintf(m.log, "cachemirror: fetch %s: %s\n", src, resp.Status)
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		return errNotFound
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("fetch %s: %s", src, resp.Status)
	}

	if err := m.root.MkdirAll(tmpDir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", tmpDir, err)
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	tmp := tmpDir + "/" + hex.EncodeToString(rnd[:]) + "-" + path.Base(rel)
	f, err := m.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			m.root.Remove(tmp)
		}
	}()
	n, err := io.Copy(f, resp.Body)
	if err != nil {
		return fmt.Errorf("fetch %s: %w", src, err)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return fmt.Errorf("fetch %s: got %d of %d bytes", src, n, resp.ContentLength)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	// Keep the upstream's date so that If-Modified-Since answers stay true.
	if t, perr := http.ParseTime(resp.Header.Get("Last-Modified")); perr == nil {
		if err := m.root.Chtimes(tmp, t, t); err != nil {
			return fmt.Errorf("set time of %s: %w", tmp, err)
		}
	}
	key := name + "/" + rel
	if err := m.root.MkdirAll(path.Dir(key), 0o755); err != nil {
		return fmt.Errorf("create folder for %s: %w", key, err)
	}
	if err := m.root.Rename(tmp, key); err != nil {
		return fmt.Errorf("store %s: %w", key, err)
	}
	m.misses.Add(1)
	m.bytes.Add(n)
	return nil
}

// upstreamURL appends the clean relative path rel to base, escaping each
// segment (pool file names carry '+', '~' and sometimes '%').
func upstreamURL(base, rel string) string {
	segs := strings.Split(rel, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.TrimSuffix(base, "/") + "/" + strings.Join(segs, "/")
}
