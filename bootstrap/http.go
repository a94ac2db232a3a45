package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// ErrNotFound is returned when the mirror does not have a file.
var ErrNotFound = errors.New("bootstrap: not on the mirror")

// retryable marks errors worth another attempt (network trouble, 5xx).
type retryable struct{ err error }

func (r retryable) Error() string { return r.err.Error() }
func (r retryable) Unwrap() error { return r.err }

const attempts = 4

// withRetry runs f until it succeeds, fails for good, or runs out of attempts,
// backing off 250 ms, 500 ms, 1 s between tries.
func withRetry(ctx context.Context, f func() error) error {
	var err error
	for i := 0; i < attempts; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(250 * time.Millisecond << (i - 1)):
			}
		}
		err = f()
		var r retryable
		if !errors.As(err, &r) {
			return err
		}
	}
	return err
}

// open starts a GET of mirror/path. The caller closes the body.
func open(ctx context.Context, client *http.Client, mirror, path string) (io.ReadCloser, int64, error) {
	full := mirror + "/" + path
	if strings.HasPrefix(full, "file://") {
		u, err := url.Parse(full)
		if err != nil {
			return nil, 0, fmt.Errorf("get %s: %w", full, err)
		}
		f, err := os.Open(u.Path)
		if os.IsNotExist(err) {
			return nil, 0, fmt.Errorf("get %s: %w", full, ErrNotFound)
		}
		if err != nil {
			return nil, 0, fmt.Errorf("get %s: %w", full, err)
		}
		st, _ := f.Stat()
		return f, st.Size(), nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, full, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("get %s: %w", full, err)
	}
	req.Header.Set("User-Agent", "jailmgr")
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, 0, ctx.Err()
		}
		return nil, 0, retryable{fmt.Errorf("get %s: %w", full, err)}
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		return resp.Body, resp.ContentLength, nil
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		resp.Body.Close()
		return nil, 0, fmt.Errorf("get %s: %w (HTTP %d)", full, ErrNotFound, resp.StatusCode)
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		resp.Body.Close()
		return nil, 0, retryable{fmt.Errorf("get %s: HTTP %s", full, resp.Status)}
	default:
		resp.Body.Close()
		return nil, 0, fmt.Errorf("get %s: HTTP %s", full, resp.Status)
	}
}

// fetchSmall reads a small file (Release, signatures) whole, with retries.
func fetchSmall(ctx context.Context, client *http.Client, mirror, path string) ([]byte, error) {
	var data []byte
	err := withRetry(ctx, func() error {
		body, _, err := open(ctx, client, mirror, path)
		if err != nil {
			return err
		}
		defer body.Close()
		data, err = io.ReadAll(io.LimitReader(body, 64<<20))
		if err != nil {
			return retryable{fmt.Errorf("get %s/%s: %w", mirror, path, err)}
		}
		return nil
	})
	return data, err
}
