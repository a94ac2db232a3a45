package bootstrap

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"jailmgr/debian/archivetest"
	"jailmgr/store"
)

// TestConcurrentBootstrapsAndGC runs bootstraps of two suites into one
// store at once while gc runs again and again: both commit whole images,
// and gc never takes a package from under them.
func TestConcurrentBootstrapsAndGC(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("bootstraps chroot: run as root (CI does)")
	}
	if testing.Short() {
		t.Skip("two bootstraps")
	}
	pkgs := append(minimalSystem(t), markerPackage())
	st := openStore(t)
	var wg sync.WaitGroup
	results := make([]*Result, 2)
	errs := make([]error, 2)
	for i, suite := range []string{"bookworm", "trixie"} {
		srv := archivetest.Serve(t, &archivetest.Archive{Suite: suite, Codename: suite, Packages: pkgs})
		o := options(srv)
		o.Suite, o.Name = suite, suite
		p, err := MakePlan(&o)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = Run(context.Background(), o, p, st)
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	gcs, skipped := 0, 0
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		rep, err := st.GC(store.GCOptions{Keep: 1})
		if err != nil {
			t.Fatalf("gc during the bootstraps: %v", err)
		}
		gcs++
		if rep.CacheSkipped {
			skipped++
		}
		if len(rep.Removed) > 0 {
			t.Errorf("gc removed %v while the bootstraps ran", rep.Removed)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("bootstrap %d: %v", i, err)
		}
	}
	if skipped == 0 {
		t.Errorf("none of %d gc runs saw the bootstraps' cache lock", gcs)
	}
	for _, r := range results {
		rep, err := store.Verify(r.Image)
		if err != nil || !rep.OK() {
			t.Errorf("%s does not verify: %v %+v", r.Image.Ref(), err, rep)
		}
		for _, p := range r.Image.Manifest.Packages {
			if _, err := os.Stat(st.CachePath(p.SHA256)); err != nil {
				t.Errorf("%s: cached package %s is gone: %v", r.Image.Ref(), p.Name, err)
			}
		}
	}
	t.Logf("%d gc runs during the bootstraps, %d of them left the cache alone", gcs, skipped)
}
