package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// GCOptions say what a garbage collection keeps.
type GCOptions struct {
	// Keep is how many of each name's newest versions stay (at least 1).
	// Tagged versions and versions a session uses always stay.
	Keep int
	// IndexMaxAge is how long a cached package index nobody used stays.
	IndexMaxAge time.Duration
	// LogMaxAge is how long the log of a failed run stays (see KeepLog);
	// default DefaultLogMaxAge.
	LogMaxAge time.Duration
	// DryRun reports what would go without removing anything.
	DryRun bool
}

// GCReport is what a garbage collection removed (or would remove).
type GCReport struct {
	Removed      []string `json:"removed"`       // image versions
	KeptInUse    []string `json:"kept_in_use"`   // old versions kept because a session or reader uses them
	KeptTagged   []string `json:"kept_tagged"`   // old versions kept because a tag names them
	Staging      int      `json:"staging"`       // staging leftovers swept
	CacheFiles   int      `json:"cache_files"`   // cached packages and indexes removed
	CacheSkipped bool     `json:"cache_skipped"` // the cache was not pruned: a bootstrap, update or import is running
	Logs         int      `json:"logs"`          // logs of failed runs removed (see KeepLog)
	LogBytes     int64    `json:"log_bytes"`     // their size
	Freed        int64    `json:"freed"`         // bytes of disk given back
}

// isDebName tells what the package cache holds, <sha256>.deb, from
// anything else.
func isDebName(name string) bool {
	sum, ok := strings.CutSuffix(name, ".deb")
	if !ok || len(sum) != 64 {
		return false
	}
	for _, c := range sum {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// GC removes old versions, staging leftovers, cache entries no image
// references and the logs of failed runs older than LogMaxAge. It holds
// the store lock throughout, so no commit or removal runs meanwhile; a
// bootstrap in progress keeps its staging area (locked) and its cached
// packages (the cache lock every staging area shares).
func (s *Store) GC(o GCOptions) (*GCReport, error) {
	if o.Keep < 1 {
		o.Keep = 1
	}
	if o.IndexMaxAge == 0 {
		o.IndexMaxAge = 14 * 24 * time.Hour
	}
	if o.LogMaxAge == 0 {
		o.LogMaxAge = DefaultLogMaxAge
	}
	l, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer l.Close()
	rep := &GCReport{Removed: []string{}, KeptInUse: []string{}, KeptTagged: []string{}}
	var statBefore unix.Statfs_t
	unix.Statfs(s.Dir, &statBefore)

	// Staging leftovers.
	before, _ := os.ReadDir(filepath.Join(s.Dir, "staging"))
	if !o.DryRun {
		if err := s.sweep(); err != nil {
			return nil, err
		}
	}
	after, _ := os.ReadDir(filepath.Join(s.Dir, "staging"))
	rep.Staging = countDirs(before) - countDirs(after)
	if rep.Logs, rep.LogBytes, err = s.gcLogs(o.LogMaxAge, o.DryRun); err != nil {
		return nil, err
	}

	imgs, err := s.Images()
	if err != nil {
		return nil, err
	}
	byName := map[string][]*Image{}
	for _, img := range imgs {
		byName[img.Name] = append(byName[img.Name], img)
	}
	tagged, err := s.taggedVersions()
	if err != nil {
		return nil, err
	}
	var keep []*Image
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		vs := byName[n] // ascending
		for i, img := range vs {
			if i >= len(vs)-o.Keep {
				keep = append(keep, img)
				continue
			}
			if tagged[img.Ref()] {
				rep.KeptTagged = append(rep.KeptTagged, img.Ref())
				keep = append(keep, img)
				continue
			}
			inUse, err := s.inUse(img)
			if err != nil {
				return nil, err
			}
			if inUse != nil {
				rep.KeptInUse = append(rep.KeptInUse, img.Ref())
				keep = append(keep, img)
				continue
			}
			if !o.DryRun {
				if err := s.removeLocked(img); err != nil {
					return rep, err
				}
			}
			rep.Removed = append(rep.Removed, img.Ref())
		}
	}

	// The caches: packages no kept version lists, indexes unused for long.
	cache, err := s.lockCache(unix.LOCK_EX | unix.LOCK_NB)
	if err != nil {
		rep.CacheSkipped = true
	} else {
		defer cache.Close()
		wanted := map[string]bool{}
		for _, img := range keep {
			for _, p := range img.Manifest.Packages {
				wanted[p.SHA256+".deb"] = true
			}
		}
		ents, err := os.ReadDir(s.CacheDir())
		if err != nil {
			return rep, fmt.Errorf("gc: %w", err)
		}
		for _, e := range ents {
			if !isDebName(e.Name()) || wanted[e.Name()] {
				continue
			}
			if !o.DryRun {
				if err := os.Remove(filepath.Join(s.CacheDir(), e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return rep, fmt.Errorf("gc: %w", err)
				}
			}
			rep.CacheFiles++
		}
		ents, _ = os.ReadDir(s.IndexCacheDir())
		for _, e := range ents {
			info, err := e.Info()
			if err != nil || time.Since(info.ModTime()) < o.IndexMaxAge {
				continue
			}
			if !o.DryRun {
				os.Remove(filepath.Join(s.IndexCacheDir(), e.Name()))
			}
			rep.CacheFiles++
		}
	}
	var statAfter unix.Statfs_t
	if !o.DryRun && unix.Statfs(s.Dir, &statAfter) == nil {
		if freed := (int64(statAfter.Bfree) - int64(statBefore.Bfree)) * statAfter.Bsize; freed > 0 {
			rep.Freed = freed
		}
	}
	return rep, nil
}

func countDirs(ents []os.DirEntry) int {
	n := 0
	for _, e := range ents {
		if e.IsDir() {
			n++
		}
	}
	return n
}

// lockCache takes the package cache's lock: shared by every staging area
// (whose bootstrap, update or import may be about to use cached files),
// exclusive for gc's pruning.
func (s *Store) lockCache(how int) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(s.Dir, "cache", "lock"), os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock package cache: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock package cache: %w", err)
	}
	return f, nil
}

// taggedVersions is the set of "name:version" that some tag names.
func (s *Store) taggedVersions() (map[string]bool, error) {
	tags, err := s.Tags()
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, target := range tags {
		out[target] = true
	}
	return out, nil
}
