package bootstrap

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
)

// fetchResult says what a fetch did.
type fetchResult struct {
	Downloaded      int
	DownloadedBytes int64
	Cached          int
}

// fetch makes sure every candidate is in the cache, downloading the missing
// ones in parallel. A download is hashed while it streams into partDir and
// renamed into the cache only once its size and SHA256 match the index, so
// the cache never holds an unverified file. Each candidate comes from the
// mirror of its pocket.
func fetch(ctx context.Context, o *Options, cands []*Candidate, cacheDir, partDir string) (fetchResult, error) {
	var res fetchResult
	var missing []*Candidate
	var total int64
	for _, c := range cands {
		if st, err := os.Stat(filepath.Join(cacheDir, c.SHA256+".deb")); err == nil && st.Size() == c.Size {
			res.Cached++
			continue
		}
		missing = append(missing, c)
		total += c.Size
	}
	if len(missing) == 0 {
		return res, nil
	}
	if err := os.MkdirAll(partDir, 0o755); err != nil {
		return res, fmt.Errorf("create download folder: %w", err)
	}
	var bar Bar
	if o.Progress != nil {
		bar = o.Progress(total, len(missing))
		defer bar.Finish()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		done     atomic.Int64
		bytes    atomic.Int64
	)
	work := make(chan *Candidate)
	for i := 0; i < o.Jobs; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range work {
				err := withRetry(ctx, func() error { return download(ctx, o, c, cacheDir, partDir, bar) })
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
						cancel()
					}
					mu.Unlock()
					continue
				}
				bytes.Add(c.Size)
				if n := done.Add(1); bar == nil && (n%25 == 0 || int(n) == len(missing)) {
					fmt.Fprintf(o.Log, "downloaded %d/%d packages (%.1f MiB)\n", n, len(missing), float64(bytes.Load())/(1<<20))
				}
			}
		}()
	}
	for _, c := range missing {
		select {
		case work <- c:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		return res, firstErr
	}
	res.Downloaded = len(missing)
	res.DownloadedBytes = bytes.Load()
	return res, nil
}

// download fetches one package from its pocket's mirror into the cache.
func download(ctx context.Context, o *Options, c *Candidate, cacheDir, partDir string, bar Bar) error {
	body, _, err := open(ctx, o.Client, c.Mirror, c.Filename)
	if err != nil {
		return err
	}
	defer body.Close()
	part := filepath.Join(partDir, c.SHA256+".deb")
	f, err := os.OpenFile(part, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("download %s: %w", c.Filename, err)
	}
	defer os.Remove(part)
	h := sha256.New()
	var w io.Writer = io.MultiWriter(f, h)
	if bar != nil {
		w = io.MultiWriter(w, barWriter{bar})
	}
	// One byte past the expected size is enough to tell a longer file.
	n, copyErr := io.Copy(w, io.LimitReader(body, c.Size+1))
	if err := f.Close(); err != nil && copyErr == nil {
		copyErr = err
	}
	if bar != nil && copyErr != nil {
		bar.Add(-n)
	}
	if copyErr != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return retryable{fmt.Errorf("download %s: %w (after %d of %d bytes)", c.Filename, copyErr, n, c.Size)}
	}
	got := hex.EncodeToString(h.Sum(nil))
	if n != c.Size || got != c.SHA256 {
		if bar != nil {
			bar.Add(-n)
		}
		herr := &HashError{File: c.Filename, WantSize: c.Size, GotSize: n, WantSHA256: c.SHA256, GotSHA: got}
		if n < c.Size {
			return retryable{herr}
		}
		return herr
	}
	if err := os.Rename(part, filepath.Join(cacheDir, c.SHA256+".deb")); err != nil {
		return fmt.Errorf("download %s: %w", c.Filename, err)
	}
	return nil
}

type barWriter struct{ b Bar }

func (w barWriter) Write(p []byte) (int, error) { w.b.Add(int64(len(p))); return len(p), nil }
