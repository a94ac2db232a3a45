package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestKeepLog: a failed run's log leaves its staging area for logs/, root's
// alone; two failures in the same second keep both logs; gc removes them
// once they are a day old, and a dry run only counts them.
func TestKeepLog(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for i := range 2 {
		stg, err := s.NewStaging()
		if err != nil {
			t.Fatal(err)
		}
		src := filepath.Join(stg.Dir, "bootstrap.log")
		os.WriteFile(src, []byte(strings.Repeat("x", 10*(i+1))), 0o644)
		p, err := s.KeepLog(src, "bootstrap-bookworm")
		if err != nil {
			t.Fatal(err)
		}
		stg.Abort()
		kept = append(kept, p)
		if _, err := os.Stat(src); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the log is still in the staging area: %v", err)
		}
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != int64(10*(i+1)) {
			t.Errorf("kept log %s: %v, %v", p, err, fi)
		}
		if filepath.Dir(p) != s.LogsDir() || !strings.HasPrefix(filepath.Base(p), "bootstrap-bookworm-") || !strings.HasSuffix(p, ".log") {
			t.Errorf("kept log at %s, want logs/bootstrap-bookworm-TIME.log", p)
		}
	}
	if kept[0] == kept[1] {
		t.Fatalf("two logs kept at the same path %s", kept[0])
	}
	if di, err := os.Stat(s.LogsDir()); err != nil || di.Mode().Perm() != 0o700 {
		t.Errorf("logs folder: %v %v, want mode 0700", err, di)
	}
	if _, err := s.KeepLog(filepath.Join(t.TempDir(), "x.log"), "../escape"); !errors.Is(err, ErrBadRef) {
		t.Errorf("KeepLog with name ../escape: %v, want ErrBadRef", err)
	}

	rep, err := s.GC(GCOptions{Keep: 1})
	if err != nil || rep.Logs != 0 {
		t.Fatalf("gc of fresh logs: %+v %v, want them kept", rep, err)
	}
	old := time.Now().Add(-25 * time.Hour)
	for _, p := range kept {
		os.Chtimes(p, old, old)
	}
	os.WriteFile(filepath.Join(s.LogsDir(), "not-a-log"), nil, 0o600)
	os.Chtimes(filepath.Join(s.LogsDir(), "not-a-log"), old, old)
	if rep, err = s.GC(GCOptions{Keep: 1, DryRun: true}); err != nil || rep.Logs != 2 || rep.LogBytes != 30 {
		t.Errorf("gc --dry-run: %+v %v, want 2 logs of 30 bytes", rep, err)
	}
	if rep, err = s.GC(GCOptions{Keep: 1}); err != nil || rep.Logs != 2 || rep.LogBytes != 30 {
		t.Errorf("gc: %+v %v, want 2 logs of 30 bytes", rep, err)
	}
	ents, _ := os.ReadDir(s.LogsDir())
	if len(ents) != 1 || ents[0].Name() != "not-a-log" {
		t.Errorf("after gc logs/ holds %v, want only what is no log", ents)
	}
}

// TestCommitContextInterrupted: a context that ends before the commit
// point commits nothing.
func TestCommitContextInterrupted(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	stg, err := s.NewStaging()
	if err != nil {
		t.Fatal(err)
	}
	cause := errors.New("interrupt signal received")
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(cause)
	if _, err := stg.CommitContext(ctx, "demo", &Manifest{Suite: "bookworm"}); !errors.Is(err, cause) {
		t.Errorf("commit with an ended context: %v, want its cause", err)
	}
	if imgs, _ := s.Images(); len(imgs) != 0 {
		t.Errorf("an interrupted commit committed %d images", len(imgs))
	}
	if err := stg.Abort(); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(filepath.Join(s.Dir, "staging")); len(ents) != 0 {
		t.Errorf("%d entries left in staging", len(ents))
	}
}
