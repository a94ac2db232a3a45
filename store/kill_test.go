package store

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// killChildEnv makes the test binary run one store operation ("rm REF",
// "import FILE" or "gc") on the store named in killStoreEnv, then exit.
const (
	killChildEnv = "JAILMGR_TEST_STORE_OP"
	killStoreEnv = "JAILMGR_TEST_STORE_DIR"
)

func init() {
	op := os.Getenv(killChildEnv)
	if op == "" {
		return
	}
	s, err := Open(os.Getenv(killStoreEnv))
	if err == nil {
		switch verb, arg, _ := strings.Cut(op, " "); verb {
		case "rm":
			_, err = s.Remove(arg)
		case "gc":
			_, err = s.GC(GCOptions{Keep: 1})
		case "import":
			_, err = s.Import(context.Background(), arg, ImportOptions{Name: "imported"})
		default:
			err = fmt.Errorf("unknown op %q", op)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// bigVersions commits n versions of name holding many small files (so that
// removing one takes long enough to be killed half way).
func bigVersions(t *testing.T, s *Store, name string, n, files int) {
	t.Helper()
	for v := 0; v < n; v++ {
		stg, err := s.NewStaging()
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < files; i++ {
			d := filepath.Join(stg.Root(), "d"+strconv.Itoa(i%50))
			os.MkdirAll(d, 0o755)
			body := "file " + strconv.Itoa(i)
			if i == 0 {
				body += " of version " + strconv.Itoa(v) // one file differs per version
			}
			if err := os.WriteFile(filepath.Join(d, strconv.Itoa(i)), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := stg.Commit(name, &Manifest{}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestKillImportRemoveAndGC kills import, rm and gc at many points: the store then lists
// only whole versions, each of which verifies, and the next Open removes
// every leftover.
func TestKillImportRemoveAndGC(t *testing.T) {
	if testing.Short() {
		t.Skip("kills many removals")
	}
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	bigVersions(t, s, "big", 9, 2000)
	self, _ := os.Executable()
	run := func(op string, delay time.Duration) (killed bool) {
		cmd := exec.Command(self, "-test.run=^$")
		cmd.Env = append(os.Environ(), killChildEnv+"="+op, killStoreEnv+"="+s.Dir)
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
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return true
		}
		if err != nil {
			t.Fatalf("%s failed by itself: %v\n%s", op, err, out.String())
		}
		return false
	}
	halfway := 0
	check := func(what string) int {
		t.Helper()
		if ents, _ := os.ReadDir(filepath.Join(s.Dir, "staging")); len(ents) > 0 {
			halfway++ // killed half way: an import staging area or a removal renamed away
		}
		if _, err := Open(s.Dir); err != nil {
			t.Fatalf("%s: reopen: %v", what, err)
		}
		if ents, _ := os.ReadDir(filepath.Join(s.Dir, "staging")); len(ents) != 0 {
			t.Errorf("%s: %d staging leftovers survive Open", what, len(ents))
		}
		imgs, err := s.Images()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		for _, img := range imgs {
			r, err := Verify(img)
			if err != nil {
				t.Fatalf("%s: verify %s: %v", what, img.Ref(), err)
			}
			if !r.OK() {
				t.Errorf("%s: %s no longer verifies: %d changed, %d missing, %d extra", what, img.Ref(), len(r.Changed), len(r.Missing), len(r.Extra))
			}
		}
		return len(imgs)
	}
	kills := 0
	// Imports of a version's export, killed at many points.
	img, err := s.Resolve("big")
	if err != nil {
		t.Fatal(err)
	}
	export := filepath.Join(t.TempDir(), "big.tar.zst")
	if err := img.Export(context.Background(), export, ExportOptions{Format: FormatTar}); err != nil {
		t.Fatal(err)
	}
	imported := 0
	for _, delay := range []time.Duration{0, 10, 30, 60, 100, 200, -1} {
		delay *= time.Millisecond
		if run("import "+export, delay) {
			kills++
		} else {
			imported++
		}
		check(fmt.Sprintf("import killed after %v", delay))
		if vs, _ := s.versions("imported"); len(vs) != imported {
			t.Errorf("import killed after %v: %d imported versions, want %d", delay, len(vs), imported)
		}
	}
	for _, v := range func() []int { vs, _ := s.versions("imported"); return vs }() {
		if _, err := s.Remove("imported:" + strconv.Itoa(v)); err != nil {
			t.Fatal(err)
		}
	}
	for i, delay := range []time.Duration{0, 3, 8, 15, 25, 40} {
		delay *= time.Millisecond
		if run("rm big:"+strconv.Itoa(i+1), delay) {
			kills++
		}
		check(fmt.Sprintf("rm killed after %v", delay))
	}
	for _, delay := range []time.Duration{0, 5, 15, 30, -1} {
		delay *= time.Millisecond
		run("gc", delay)
		check(fmt.Sprintf("gc killed after %v", delay))
	}
	if n := check("the end"); n != 1 {
		t.Errorf("after the last, unkilled gc %d versions are left, want 1", n)
	}
	if kills == 0 {
		t.Error("no removal was killed: the test proves nothing")
	}
	t.Logf("%d kills, %d of them left a staging area (half an import or removal) for Open to sweep", kills, halfway)
}
