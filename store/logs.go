package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"jailmgr/internal/names"
)

// LogsDir is the folder of the logs of failed runs (see KeepLog).
func (s *Store) LogsDir() string { return filepath.Join(s.Dir, "logs") }

// DefaultLogMaxAge is how long gc leaves a kept log alone: long enough for
// the user who saw the failure to read it, whenever gc runs.
const DefaultLogMaxAge = 24 * time.Hour

// KeepLog moves the log of a failed run, at path on the store's
// filesystem (in its staging area), to logs/NAME-TIMESTAMP.log, readable
// by root only, and returns its new path. A staging area is removed when
// its run fails; the log is what the user needs to find out why. gc
// removes kept logs once they are a day old.
func (s *Store) KeepLog(path, name string) (string, error) {
	if !names.Valid(name, 128) {
		return "", fmt.Errorf("keep log %s: %w %q", path, ErrBadRef, name)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return "", fmt.Errorf("keep log %s: %w", path, err)
	}
	// Under the store's lock, so that a gc running meanwhile does not
	// remove the log the error is about to name.
	l, err := s.lock()
	if err != nil {
		return "", err
	}
	defer l.Close()
	if err := os.Mkdir(s.LogsDir(), 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("keep log %s: %w", path, err)
	}
	base := name + "-" + time.Now().UTC().Format("20060102T150405Z")
	for n := 1; ; n++ {
		dst := filepath.Join(s.LogsDir(), base+".log")
		if n > 1 {
			dst = filepath.Join(s.LogsDir(), base+"-"+strconv.Itoa(n)+".log")
		}
		// A link fails where a rename would replace: two runs that
		// fail in the same second keep both logs.
		err := os.Link(path, dst)
		if errors.Is(err, fs.ErrExist) && n < 100 {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("keep log %s: %w", path, err)
		}
		os.Remove(path)
		return dst, nil
	}
}

// gcLogs removes the kept logs older than maxAge, and counts them and
// their bytes.
func (s *Store) gcLogs(maxAge time.Duration, dryRun bool) (n int, size int64, err error) {
	ents, err := os.ReadDir(s.LogsDir())
	if errors.Is(err, fs.ErrNotExist) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("gc logs: %w", err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), ".log") {
			continue
		}
		info, err := e.Info()
		if err != nil || time.Since(info.ModTime()) < maxAge {
			continue
		}
		if !dryRun {
			if err := os.Remove(filepath.Join(s.LogsDir(), e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return n, size, fmt.Errorf("gc logs: %w", err)
			}
		}
		n++
		size += info.Size()
	}
	return n, size, nil
}
