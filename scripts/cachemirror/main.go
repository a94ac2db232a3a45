// Command cachemirror is a loopback caching HTTP mirror for the benchmarks.
//
// It serves /NAME/PATH from the upstream given as -upstream NAME=URL, fetching
// each file once, storing it under -cache (written to a temporary file, then
// renamed into place) and serving it from disk from then on. Everything is
// cached, the mutable dists/*/InRelease, Release and Packages indexes too, so
// that repeated runs reach no network: the cache is a snapshot of the archive,
// and deleting the cache folder is how it is refreshed. Upstream 404s are passed
// through (and remembered for the life of the process); other upstream errors
// become 502. Only GET and HEAD are served, and there are no folder listings.
//
// The first line on standard output is the base URL it listens on, so that a
// script started with -listen 127.0.0.1:0 learns the port:
//
//	cachemirror -cache DIR -upstream debian=URL -upstream ubuntu=URL
//	http://127.0.0.1:40123
//
// SIGTERM or SIGINT shuts it down after the requests in flight.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "cachemirror: %v\n", err)
		os.Exit(1)
	}
}

// upstreams is the repeatable -upstream NAME=URL flag.
type upstreams map[string]*url.URL

func (u upstreams) String() string {
	var parts []string
	for name, base := range u {
		parts = append(parts, name+"="+base.String())
	}
	return strings.Join(parts, ",")
}

func (u upstreams) Set(s string) error {
	name, raw, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return fmt.Errorf("parse upstream %q: want NAME=URL", s)
	}
	if strings.ContainsAny(name, "/\\") || strings.HasPrefix(name, ".") {
		return fmt.Errorf("parse upstream %q: NAME must be one path segment not starting with a dot", s)
	}
	base, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("parse upstream %q: %w", s, err)
	}
	if base.Scheme != "http" && base.Scheme != "https" || base.Host == "" {
		return fmt.Errorf("parse upstream %q: URL must be http(s)://HOST/...", s)
	}
	if _, dup := u[name]; dup {
		return fmt.Errorf("parse upstream %q: %s given twice", s, name)
	}
	u[name] = base
	return nil
}

// run parses args, serves until ctx is done, then shuts down gracefully.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("cachemirror", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on (port 0 picks one)")
	cacheDir := fs.String("cache", "", "cache `DIR` (created if missing)")
	ups := upstreams{}
	fs.Var(ups, "upstream", "`NAME=URL`: serve /NAME/... from URL/... (repeatable)")
	quiet := fs.Bool("q", false, "do not log upstream fetches")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("parse arguments: unexpected %q", fs.Args())
	}
	if *cacheDir == "" || len(ups) == 0 {
		return errors.New("parse arguments: -cache and at least one -upstream are required")
	}
	if err := os.MkdirAll(*cacheDir, 0o755); err != nil {
		return fmt.Errorf("create cache: %w", err)
	}
	root, err := os.OpenRoot(*cacheDir)
	if err != nil {
		return fmt.Errorf("open cache: %w", err)
	}
	defer root.Close()

	logw := stderr
	if *quiet {
		logw = io.Discard
	}
	m := newMirror(root, ups, logw)

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	fmt.Fprintf(stdout, "http://%s\n", ln.Addr())
	if f, ok := stdout.(*os.File); ok {
		f.Sync() // the caller may be polling a file for the address
	}

	srv := &http.Server{Handler: m, ReadHeaderTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	hits, misses, bytes := m.stats()
	fmt.Fprintf(logw, "cachemirror: %d served from cache, %d fetched upstream (%.1f MiB)\n", hits, misses, float64(bytes)/(1<<20))
	return nil
}
