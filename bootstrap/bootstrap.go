package bootstrap

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"sync"
	"time"

	"jailmgr/store"
	"jailmgr/store/tree"
)

// Result reports what a bootstrap did.
type Result struct {
	Image           *store.Image
	Packages        int
	Downloaded      int
	DownloadedBytes int64
	Cached          int
	Elapsed         time.Duration
	// Reused is set when Image is an existing version built from the
	// same inputs, and nothing was built.
	Reused bool
}

// Run builds an image and commits it into the store, following the plan
// that MakePlan made of the same options. On any error nothing is committed
// and the staging area is removed; if the process dies, the next store.Open
// removes it. A run that fails once its maintainer scripts have started
// keeps their log in the store (KeptLogError); one whose ctx ends before
// the commit point fails with an InterruptedError.
func Run(ctx context.Context, o Options, p *Plan, st *store.Store) (res *Result, err error) {
	start := time.Now()
	if err := o.setDefaults(); err != nil {
		return nil, err
	}
	logf := func(format string, args ...any) { fmt.Fprintf(o.Log, format+"\n", args...) }
	logf("bootstrap %s (%s, %s, variant %s) from %s (%s)%s", o.Suite, p.Suite.Distribution, o.Arch, o.Variant, p.Mirror, p.MirrorFrom, p.pocketsLine())

	stg, err := st.NewStaging()
	if err != nil {
		return nil, err
	}
	committed := false
	logPath := "" // the maintainer scripts' log, once it exists
	defer func() {
		if !committed {
			err = abandon(ctx, st, stg, logPath, "bootstrap-"+o.Suite, err)
		}
	}()
	// Equal inputs build an equal tree: hand back the version that has
	// it, having read only the pockets' InRelease files (see reuse.go).
	archive := func() ([]archiveState, error) { return archiveNow(ctx, &o, p) }
	reused, err := reuse(st, &o, p, archive, logf)
	if err != nil {
		return nil, err
	}
	if reused != nil {
		return &Result{Image: reused, Reused: true, Packages: len(reused.Manifest.Packages), Elapsed: time.Since(start)}, nil
	}

	t0 := time.Now()
	// Reading a suite's index allocates a lot that stays live until the
	// selection is made; collecting more often keeps the peak near what is
	// live, at little cost in time.
	gc := debug.SetGCPercent(25)
	defer debug.SetGCPercent(gc)
	// After it, what is live is small (a few MiB of buffers and package
	// lists) while the unpack allocates steadily: collecting at half the
	// default growth keeps the peak resident set about 3 MiB lower, at no
	// cost in time that a bootstrap shows.
	restoreGC := sync.OnceFunc(func() { debug.SetGCPercent(min(gc, 50)) })
	idx, err := fetchIndex(ctx, &o, p, indexCache{dir: st.IndexCacheDir(), tempDir: stg.Dir})
	if err != nil {
		return nil, err
	}
	logf("verified InRelease and %d Packages indexes of %d pockets (%s)", len(idx.Pockets)*len(p.Components), len(idx.Pockets), since(t0))
	inputs := inputsOf(&o, p, pocketsOf(idx)).hash()
	sel, err := Select(idx, p.Suite, o.Variant, o.Include, o.Exclude)
	if err != nil {
		return nil, err
	}
	all := sel.All()
	inRelease, pockets := idx.InReleaseSHA256, idx.Pockets
	// The index of a whole suite is most of the memory a bootstrap holds;
	// from here on only the selection is needed.
	logf("selected %d packages (%d required, %d for the variant)", len(all), len(sel.Required), len(sel.Base))
	idx, sel = nil, nil
	restoreGC()
	runtime.GC()
	debug.FreeOSMemory()

	t0 = time.Now()
	fr, err := fetch(ctx, &o, all, st.CacheDir(), filepath.Join(stg.Dir, "partial"))
	if err != nil {
		return nil, err
	}
	os.Remove(filepath.Join(stg.Dir, "partial")) // empty now; not part of the image
	if fr.Downloaded == 0 {
		logf("all %d packages in the cache: downloaded 0 bytes", fr.Cached)
	} else {
		logf("downloaded %d packages (%.1f MiB, %s), %d from the cache", fr.Downloaded, float64(fr.DownloadedBytes)/(1<<20), since(t0), fr.Cached)
	}

	root, err := tree.OpenRoot(stg.Root())
	if err != nil {
		return nil, err
	}
	defer root.Close()
	u, err := newUnpacker(root, st.CacheDir(), p.MergedUsr)
	if err != nil {
		return nil, err
	}
	t0 = time.Now()
	pkgs, err := u.unpackAll(ctx, unpackJobs(o.Jobs), all)
	if err != nil {
		return nil, err
	}
	logf("unpacked %d packages (%s)", len(pkgs), since(t0))
	if err := writeDpkgDB(root, pkgs); err != nil {
		return nil, err
	}
	if err := makeDevices(root); err != nil {
		return nil, err
	}
	if err := prepareEtc(root, &o, p); err != nil {
		return nil, err
	}
	logFile, err := os.OpenFile(filepath.Join(stg.Dir, "bootstrap.log"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create bootstrap log: %w", err)
	}
	defer logFile.Close()
	logPath = logFile.Name()
	logf("configuring packages")
	t0 = time.Now()
	if err := configure(ctx, &o, root, pkgs, logFile); err != nil {
		return nil, err
	}
	logf("configured %d packages (%s)", len(pkgs), since(t0))
	if err := runHooks(ctx, o.CustomizeHooks, stg.Root(), logFile); err != nil {
		return nil, err
	}
	if err := cleanup(root); err != nil {
		return nil, err
	}
	if err := clampTimes(stg.Root()); err != nil {
		return nil, err
	}
	size, err := store.DiskUsage(stg.Root())
	if err != nil {
		return nil, err
	}
	m := &store.Manifest{
		Suite: o.Suite, Distribution: p.Suite.Distribution, Arch: o.Arch, Variant: o.Variant,
		Components: p.Components, Mirror: p.Mirror, InReleaseSHA256: inRelease,
		MergedUsr: p.MergedUsr, Created: created(), Size: size, IgnoreValidUntil: o.IgnoreValidUntil,
	}
	for _, pk := range pockets {
		m.Pockets = append(m.Pockets, store.Pocket{Suite: pk.Suite, Mirror: pk.Mirror, InReleaseSHA256: pk.InReleaseSHA256})
	}
	m.InputsSHA256 = inputs
	for _, c := range all {
		m.Packages = append(m.Packages, store.Package{Name: c.Name, Version: c.Version, Arch: c.Arch, SHA256: c.SHA256})
	}
	sort.Slice(m.Packages, func(i, j int) bool { return m.Packages[i].Name < m.Packages[j].Name })
	logFile.Close()
	os.Remove(logFile.Name())
	logPath = ""
	img, err := stg.CommitContext(ctx, o.Name, m)
	if err != nil {
		return nil, err
	}
	committed = true
	logf("committed %s (%d packages, %.1f MiB, %s in all)", img.Ref(), len(all), float64(size)/(1<<20), since(start))
	return &Result{Image: img, Packages: len(all), Downloaded: fr.Downloaded, DownloadedBytes: fr.DownloadedBytes, Cached: fr.Cached, Elapsed: time.Since(start)}, nil
}

// unpackJobs bounds unpack parallelism. Decompression is CPU-bound but runs
// in xz processes beside ours, so two workers a core keep both busy.
func unpackJobs(jobs int) int {
	n := 2 * numCPU()
	if jobs < n {
		return jobs
	}
	return n
}

func since(t time.Time) string { return time.Since(t).Round(10 * time.Millisecond).String() }

// created is the image's creation time: SOURCE_DATE_EPOCH when set, so that
// a reproducible build gives a reproducible manifest.
func created() time.Time {
	if secs, err := strconv.ParseInt(os.Getenv("SOURCE_DATE_EPOCH"), 10, 64); err == nil {
		return time.Unix(secs, 0).UTC()
	}
	return time.Now().UTC().Truncate(time.Second)
}
