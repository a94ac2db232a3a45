package bootstrap

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"jailmgr/debian/compress"
)

// indexCache keeps verified Packages indexes, so that a second bootstrap
// of the same archive state neither downloads nor decompresses them again.
// Entries are named by the SHA256 the signed Release file gives for the
// compressed index, and written only after that hash was checked.
type indexCache struct {
	dir     string // the store's index cache; "" disables it
	tempDir string // where entries are written before they are verified
}

// read parses a cached index with parse; hit is false if there is none.
func (c indexCache) read(sha string, parse func(io.Reader) error) (hit bool, err error) {
	if c.dir == "" {
		return false, nil
	}
	path := filepath.Join(c.dir, sha+".zst")
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read cached index: %w", err)
	}
	defer f.Close()
	r, err := compress.NewReader(path, f)
	if err != nil {
		return false, fmt.Errorf("read cached index %s: %w", path, err)
	}
	defer r.Close()
	if err := parse(r); err != nil {
		// A damaged cache entry is dropped; the caller downloads instead.
		os.Remove(path)
		return false, nil
	}
	return true, nil
}

// cacheWriter is an entry being written.
type cacheWriter struct {
	c    indexCache
	f    *os.File
	z    io.WriteCloser
	done bool
}

func (c indexCache) create() (*cacheWriter, error) {
	if c.dir == "" {
		return &cacheWriter{c: c}, nil
	}
	f, err := os.CreateTemp(c.tempDir, "index-*.zst")
	if err != nil {
		return nil, fmt.Errorf("cache index: %w", err)
	}
	z, err := compress.NewWriter(".zst", f)
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("cache index: %w", err)
	}
	return &cacheWriter{c: c, f: f, z: z}, nil
}

func (w *cacheWriter) Write(p []byte) (int, error) {
	if w.z == nil {
		return len(p), nil
	}
	return w.z.Write(p)
}

// commit moves the verified entry into the cache.
func (w *cacheWriter) commit(sha string) error {
	if w.z == nil || w.done {
		return nil
	}
	w.done = true
	err := w.z.Close()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(w.f.Name(), filepath.Join(w.c.dir, sha+".zst"))
	}
	if err != nil {
		os.Remove(w.f.Name())
		return fmt.Errorf("cache index: %w", err)
	}
	return nil
}

// abort drops an entry that was not committed.
func (w *cacheWriter) abort() {
	if w.z == nil || w.done {
		return
	}
	w.done = true
	w.z.Close()
	w.f.Close()
	os.Remove(w.f.Name())
}
