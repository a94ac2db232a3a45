package bootstrap

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"jailmgr/debian/archivetest"
	"jailmgr/store"
)

// childEnv carries a bootstrap for the test binary to run as a child
// process, so that the test can SIGKILL it mid-way.
const childEnv = "JAILMGR_TEST_BOOTSTRAP_CHILD"

type childJob struct {
	Store, Mirror, Keyring string
}

// updateChildEnv names a store whose image test:1 the child updates.
const updateChildEnv = "JAILMGR_TEST_UPDATE_CHILD"

// maybeRunChild runs the bootstrap described in childEnv (or the update
// updateChildEnv asks for) and exits.
func maybeRunChild() {
	if dir := os.Getenv(updateChildEnv); dir != "" {
		st, err := store.Open(dir)
		if err == nil {
			_, err = Update(context.Background(), st, UpdateOptions{Ref: "test:1"})
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	spec := os.Getenv(childEnv)
	if spec == "" {
		return
	}
	var job childJob
	if err := json.Unmarshal([]byte(spec), &job); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	o := Options{Suite: "bookworm", Variant: "minbase", Mirror: job.Mirror, Keyring: job.Keyring, Name: "k", Jobs: 4, Pockets: []string{PocketRelease},
		// Every run builds: a finished one would otherwise be reused.
		Force: true}
	st, err := store.Open(job.Store)
	if err == nil {
		var p *Plan
		if p, err = MakePlan(&o); err == nil {
			_, err = Run(context.Background(), o, p, st)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// TestKillAnywhere kills a bootstrap with SIGKILL at many points: the store
// then never shows a partial image, the next Open removes every leftover,
// and no mount or process of the bootstrap survives.
func TestKillAnywhere(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("the bootstrap configures in a chroot: run as root (CI does)")
	}
	if testing.Short() {
		t.Skip("kills a dozen bootstraps")
	}
	pkgs := append(minimalSystem(t), markerPackage())
	srv := archivetest.Serve(t, &archivetest.Archive{Suite: "bookworm", Codename: "bookworm", Packages: pkgs})
	dir := t.TempDir()
	spec, err := json.Marshal(childJob{Store: dir, Mirror: srv.URL, Keyring: srv.KeyringPath})
	if err != nil {
		t.Fatal(err)
	}
	committed := 0
	// The last run is not killed: it must commit.
	for _, delay := range []time.Duration{0, 5, 20, 50, 100, 200, 350, 500, 800, 1200, 1800, 2500, 3500, 5000, 7000, -1} {
		delay *= time.Millisecond
		if !runChild(t, "bootstrap", childEnv+"="+string(spec), delay) {
			committed++
		}
		// Give the namespace helper (killed through its parent-death
		// signal) a moment to go.
		time.Sleep(50 * time.Millisecond)
		mounts, _ := os.ReadFile("/proc/self/mountinfo")
		if strings.Contains(string(mounts), dir) {
			t.Fatalf("killed after %v: a mount below the store survived:\n%s", delay, mounts)
		}
		st, err := store.Open(dir)
		if err != nil {
			t.Fatalf("reopen store after kill at %v: %v", delay, err)
		}
		if ents, _ := os.ReadDir(filepath.Join(dir, "staging")); len(ents) != 0 {
			t.Errorf("killed after %v: %d staging leftovers survive store.Open", delay, len(ents))
		}
		imgs, err := st.Images()
		if err != nil {
			t.Fatalf("killed after %v: list images: %v", delay, err)
		}
		if len(imgs) != committed {
			t.Fatalf("killed after %v: %d images, want %d (only whole runs commit)", delay, len(imgs), committed)
		}
		for _, img := range imgs {
			if _, err := os.Stat(filepath.Join(img.RootFS(), "var/lib/dpkg/status")); err != nil || len(img.Manifest.Packages) != len(pkgs) {
				t.Errorf("image %s is not whole: %v, %d packages", img.Ref(), err, len(img.Manifest.Packages))
			}
		}
	}
	// Only this test's helpers: their command line names a root in its
	// store. Other bootstraps on the machine are not ours to count.
	if out, _ := exec.Command("pgrep", "-a", "-f", "__jailmgr-chroot-init.* "+regexp.QuoteMeta(dir)+"/").Output(); len(out) > 0 {
		t.Errorf("chroot helpers survive: %s", out)
	}
	if committed == 0 {
		t.Errorf("no run committed, not even the one left to finish")
	}
	t.Logf("%d of the runs committed", committed)
}

// killUpdates updates test:1 in st again and again, killing the update at
// many points: afterwards the store holds only whole versions, each of
// which is what its index says, and no leftover survives the next Open.
func killUpdates(t *testing.T, st *store.Store) {
	imgs, err := st.Images()
	if err != nil {
		t.Fatal(err)
	}
	committed := len(imgs)
	for _, delay := range []time.Duration{0, 30, 100, 300, 600, 1000, 1500, 2200, 3000, -1} {
		delay *= time.Millisecond
		if !runChild(t, "update", updateChildEnv+"="+st.Dir, delay) {
			committed++
		}
		time.Sleep(50 * time.Millisecond)
		if _, err := store.Open(st.Dir); err != nil {
			t.Fatalf("reopen store after kill at %v: %v", delay, err)
		}
		if ents, _ := os.ReadDir(filepath.Join(st.Dir, "staging")); len(ents) != 0 {
			t.Errorf("killed after %v: %d staging leftovers survive store.Open", delay, len(ents))
		}
		imgs, err := st.Images()
		if err != nil {
			t.Fatal(err)
		}
		if len(imgs) != committed {
			t.Fatalf("killed after %v: %d versions, want %d", delay, len(imgs), committed)
		}
		for _, img := range imgs {
			if err := sameAsIndex(img); err != nil {
				t.Errorf("killed after %v: %v", delay, err)
			}
		}
	}
	if committed < 2 {
		t.Error("no update committed, not even the one left to finish")
	}
}

// sameAsIndex checks that an image's tree is what its index recorded.
func sameAsIndex(img *store.Image) error {
	want, err := img.Index()
	if err != nil {
		return err
	}
	got, err := store.BuildIndex(img.RootFS())
	if err != nil {
		return err
	}
	if len(got) != len(want) {
		seen := map[string]bool{}
		for _, e := range want {
			seen[e.Path] = true
		}
		var extra []string
		for _, e := range got {
			if !seen[e.Path] && len(extra) < 10 {
				extra = append(extra, e.Path)
			}
		}
		return fmt.Errorf("%s holds %d paths, its index %d; not in the index: %v", img.Ref(), len(got), len(want), extra)
	}
	for i := range got {
		if !got[i].Same(&want[i]) {
			return fmt.Errorf("%s: %s is %+v, its index says %+v", img.Ref(), got[i].Path, got[i], want[i])
		}
	}
	return nil
}

// runChild runs this test binary as a child that does what env asks, and
// SIGKILLs it after delay (never, when delay is negative). It reports
// whether the kill ended the child; a child that fails by itself fails
// the test.
func runChild(t *testing.T, what, env string, delay time.Duration) (killed bool) {
	t.Helper()
	self, _ := os.Executable()
	cmd := exec.Command(self, "-test.run=^$")
	cmd.Env = append(os.Environ(), env)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if delay >= 0 {
		time.Sleep(delay)
		cmd.Process.Signal(syscall.SIGKILL)
	}
	err := cmd.Wait()
	if err == nil {
		return false
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
		t.Fatalf("%s child failed by itself after %v: %v\n%s", what, delay, err, out.String())
	}
	return true
}
