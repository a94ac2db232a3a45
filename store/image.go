package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// Manifest describes how an image version was built and what it holds.
type Manifest struct {
	Name            string    `json:"name"`
	Version         int       `json:"version"`
	Suite           string    `json:"suite"`
	Distribution    string    `json:"distribution"`
	Arch            string    `json:"arch"`
	Variant         string    `json:"variant"`
	Components      []string  `json:"components"`
	Mirror          string    `json:"mirror"`           // the release pocket's
	InReleaseSHA256 string    `json:"inrelease_sha256"` // the release pocket's
	MergedUsr       bool      `json:"merged_usr"`
	Packages        []Package `json:"packages"`
	Created         time.Time `json:"created"`
	Size            int64     `json:"size"`
	// Pockets are every suite the image was built from (release, updates,
	// security), each with its mirror; empty for images made before they
	// were recorded, which were built from the release alone.
	Pockets []Pocket `json:"pockets,omitempty"`
	// IgnoreValidUntil says the build accepted Release files past their
	// Valid-Until date (--ignore-valid-until).
	IgnoreValidUntil bool `json:"ignore_valid_until,omitempty"`
	// Parent is the version an update started from ("name:N").
	Parent string `json:"parent,omitempty"`
	// InputsSHA256 is the hash of everything a bootstrap built this
	// version from (archive states, options, hooks, SOURCE_DATE_EPOCH):
	// a bootstrap with the same inputs reuses the version instead of
	// building an equal one. Empty when the tree is not a bootstrap's
	// alone (an update, or a version committed before it existed).
	InputsSHA256 string `json:"inputs_sha256,omitempty"`
}

// Pocket is one suite of an archive an image was built from.
type Pocket struct {
	Suite           string `json:"suite"`  // as under dists/: bookworm-updates
	Mirror          string `json:"mirror"` // without trailing slash
	InReleaseSHA256 string `json:"inrelease_sha256"`
}

// Package is one installed package of an image.
type Package struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Arch    string `json:"arch"`
	SHA256  string `json:"sha256"`
}

// Image is one committed version of an image.
type Image struct {
	Name     string
	Version  int
	Dir      string // images/<name>/<version>
	Manifest Manifest
}

// RootFS is the image's root filesystem.
func (i *Image) RootFS() string { return filepath.Join(i.Dir, "rootfs") }

// Ref is the image's "name:version" reference.
func (i *Image) Ref() string { return i.Name + ":" + strconv.Itoa(i.Version) }

// Images lists every committed image version, by name then version.
func (s *Store) Images() ([]*Image, error) {
	ents, err := os.ReadDir(filepath.Join(s.Dir, "images"))
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	var out []*Image
	for _, e := range ents {
		if !e.IsDir() || !validName(e.Name()) {
			continue
		}
		vs, err := s.versions(e.Name())
		if err != nil {
			return nil, err
		}
		for _, v := range vs {
			img, err := s.load(e.Name(), v, true)
			if err != nil {
				return nil, err
			}
			out = append(out, img)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Version < out[j].Version
	})
	return out, nil
}

// Resolve finds the image a reference names: "name" is its newest version,
// "name:N" version N, "name:TAG" the version the tag points at (see Tag).
func (s *Store) Resolve(ref string) (*Image, error) { return s.resolve(ref, true) }

// Locate resolves ref as Resolve does, without reading the manifest: the
// Image has its name, version and folder, and a zero Manifest. Sessions
// need no more, and their start should not grow with the package list.
func (s *Store) Locate(ref string) (*Image, error) { return s.resolve(ref, false) }

func (s *Store) resolve(ref string, manifest bool) (*Image, error) {
	if isTagRef(ref) {
		return s.resolveTag(ref, manifest)
	}
	name, v, err := ParseRef(ref)
	if err != nil {
		return nil, err
	}
	vs, err := s.versions(name)
	if err != nil {
		return nil, err
	}
	if len(vs) == 0 {
		return nil, fmt.Errorf("%w: %s (see 'jailmgr image list', or build it with 'jailmgr bootstrap')", ErrNotFound, ref)
	}
	if v == 0 {
		v = vs[len(vs)-1]
	} else if sort.SearchInts(vs, v) == len(vs) || vs[sort.SearchInts(vs, v)] != v {
		return nil, fmt.Errorf("%w: %s (versions of %s: %v)", ErrNotFound, ref, name, vs)
	}
	return s.load(name, v, manifest)
}

// load reads an image version; without manifest it only checks that the
// manifest is there (a version without one is not committed).
func (s *Store) load(name string, v int, manifest bool) (*Image, error) {
	dir := filepath.Join(s.Dir, "images", name, strconv.Itoa(v))
	img := &Image{Name: name, Version: v, Dir: dir}
	if !manifest {
		if _, err := os.Stat(filepath.Join(dir, "manifest.json")); err != nil {
			return nil, fmt.Errorf("read manifest of %s:%d: %w", name, v, err)
		}
		return img, nil
	}
	data, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return nil, fmt.Errorf("read manifest of %s:%d: %w", name, v, err)
	}
	if err := json.Unmarshal(data, &img.Manifest); err != nil {
		return nil, fmt.Errorf("read manifest of %s:%d: %w", name, v, err)
	}
	return img, nil
}

// Remove deletes an image version. It refuses (with an *InUseError) while
// a session's root is mounted over it or an update or export reads it. The
// version is first renamed into staging, so a crash halfway leaves a
// leftover the next Open sweeps, never a half image.
func (s *Store) Remove(ref string) (*Image, error) {
	img, err := s.Resolve(ref)
	if err != nil {
		return nil, err
	}
	l, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer l.Close()
	if err := s.removeLocked(img); err != nil {
		return nil, err
	}
	return img, nil
}

// removeLocked removes img; the caller holds the store lock.
func (s *Store) removeLocked(img *Image) error {
	if _, err := os.Stat(img.Dir); err != nil {
		return fmt.Errorf("remove %s: %w", img.Ref(), ErrNotFound)
	}
	inUse, err := s.inUse(img)
	if err != nil {
		return err
	}
	if inUse != nil {
		return inUse
	}
	id := newID()
	tmp := filepath.Join(s.Dir, "staging", "rm-"+id)
	lock, err := os.OpenFile(tmp+".lock", os.O_CREATE|os.O_EXCL|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("remove %s: %w", img.Ref(), err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return fmt.Errorf("remove %s: %w", img.Ref(), err)
	}
	if mounts, err := mountsBelow(img.Dir); err != nil {
		return err
	} else if len(mounts) > 0 {
		os.Remove(tmp + ".lock")
		return fmt.Errorf("remove %s: %w: %v (end the sessions using it first)", img.Ref(), ErrMounted, mounts)
	}
	if err := os.Rename(img.Dir, tmp); err != nil {
		return fmt.Errorf("remove %s: %w", img.Ref(), err)
	}
	os.Remove(filepath.Dir(img.Dir)) // the name's folder, if now empty
	if err := removeAll(tmp); err != nil {
		return err
	}
	os.Remove(tmp + ".lock")
	return nil
}

// DiskUsage is the space a tree takes: allocated blocks, each inode counted once.
func DiskUsage(root string) (int64, error) {
	seen := map[uint64]bool{}
	var total int64
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		if st.Nlink > 1 && !d.IsDir() {
			if seen[st.Ino] {
				return nil
			}
			seen[st.Ino] = true
		}
		total += st.Blocks * 512
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("measure %s: %w", root, err)
	}
	return total, nil
}
