package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Tags are names that point at one image version and can be moved:
// "NAME:TAG", where TAG is not all digits (that would be a version). NAME
// need not be the name of the image the tag points at.
//
// Each tag is a file, tags/<NAME>/<TAG>, holding "name:version". It is
// replaced by a rename under the store lock, so a reader sees the old
// target or the new one, never a mix. Removing a version does not remove
// its tags: Resolve then fails with ErrDanglingTag until the tag is moved
// or removed.

// ErrDanglingTag is returned by Resolve for a tag whose version was removed.
var ErrDanglingTag = errors.New("store: tag points at a removed image version")

// ParseTag splits "NAME:TAG". The name follows ValidName; the tag too, and
// is not all digits.
func ParseTag(ref string) (name, tag string, err error) {
	name, tag, ok := strings.Cut(ref, ":")
	if !ok {
		return "", "", fmt.Errorf("%w %q: a tag is NAME:TAG, e.g. %s:stable", ErrBadRef, ref, ref)
	}
	if !validName(name) {
		return "", "", fmt.Errorf("%w %q: a name is letters, digits, '.', '-' and '_'", ErrBadRef, ref)
	}
	if allDigits(tag) {
		return "", "", fmt.Errorf("%w %q: %s:%s would name version %s; a tag needs a letter or one of '.', '-', '_'", ErrBadRef, ref, name, tag, tag)
	}
	if !validName(tag) {
		return "", "", fmt.Errorf("%w %q: a tag is letters, digits, '.', '-' and '_', not starting with '.' or '-'", ErrBadRef, ref)
	}
	return name, tag, nil
}

// isTagRef reports whether ref has the form of a tag rather than of
// "name" or "name:N"; whether it is a valid one is ParseTag's to say.
func isTagRef(ref string) bool {
	_, v, ok := strings.Cut(ref, ":")
	return ok && v != "" && !allDigits(v)
}

func allDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

func (s *Store) tagPath(name, tag string) string {
	return filepath.Join(s.Dir, "tags", name, tag)
}

// Tag points the tag "NAME:TAG" at the image ref resolves to (a tag given
// as ref is followed once: the new tag names the version, not the other
// tag). A tag that exists is moved. It returns the tagged image and the
// tag's previous target ("" if it is new).
func (s *Store) Tag(ref, tag string) (img *Image, previous string, err error) {
	name, t, err := ParseTag(tag)
	if err != nil {
		return nil, "", err
	}
	l, err := s.lock()
	if err != nil {
		return nil, "", err
	}
	defer l.Close()
	// Resolved under the lock, so that a removal cannot slip in between.
	img, err = s.Resolve(ref)
	if err != nil {
		return nil, "", err
	}
	dir := filepath.Join(s.Dir, "tags", name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", fmt.Errorf("tag %s: %w", tag, err)
	}
	removeTemps(dir)
	if data, err := os.ReadFile(s.tagPath(name, t)); err == nil {
		previous = strings.TrimSpace(string(data))
	}
	tmp := filepath.Join(dir, "."+t+".tmp")
	if err := writeFileSync(tmp, []byte(img.Ref()+"\n")); err != nil {
		return nil, "", fmt.Errorf("tag %s: %w", tag, err)
	}
	if err := os.Rename(tmp, s.tagPath(name, t)); err != nil {
		os.Remove(tmp)
		return nil, "", fmt.Errorf("tag %s: %w", tag, err)
	}
	syncDir(dir)
	return img, previous, nil
}

// Untag removes the tag "NAME:TAG" and returns what it pointed at.
func (s *Store) Untag(tag string) (target string, err error) {
	name, t, err := ParseTag(tag)
	if err != nil {
		return "", err
	}
	l, err := s.lock()
	if err != nil {
		return "", err
	}
	defer l.Close()
	p := s.tagPath(name, t)
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return "", s.noTag(tag, name)
	}
	if err != nil {
		return "", fmt.Errorf("untag %s: %w", tag, err)
	}
	if err := os.Remove(p); err != nil {
		return "", fmt.Errorf("untag %s: %w", tag, err)
	}
	dir := filepath.Dir(p)
	removeTemps(dir)
	os.Remove(dir) // the name's folder, if now empty
	syncDir(filepath.Dir(dir))
	return strings.TrimSpace(string(data)), nil
}

// Tags returns every tag ("NAME:TAG") with the version it points at
// ("name:version"), dangling tags included.
func (s *Store) Tags() (map[string]string, error) {
	out := map[string]string{}
	names, err := os.ReadDir(filepath.Join(s.Dir, "tags"))
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list tags: %w", err)
	}
	for _, n := range names {
		if !n.IsDir() || !validName(n.Name()) {
			continue
		}
		tags, err := os.ReadDir(filepath.Join(s.Dir, "tags", n.Name()))
		if err != nil {
			return nil, fmt.Errorf("list tags: %w", err)
		}
		for _, t := range tags {
			// Temporary files start with '.', which no tag does.
			if t.IsDir() || !validName(t.Name()) || allDigits(t.Name()) {
				continue
			}
			ref := n.Name() + ":" + t.Name()
			target, err := s.readTag(n.Name(), t.Name())
			if err != nil {
				return nil, err
			}
			out[ref] = target
		}
	}
	return out, nil
}

// TagsOf returns the tags that point at img, sorted.
func (s *Store) TagsOf(img *Image) ([]string, error) {
	all, err := s.Tags()
	if err != nil {
		return nil, err
	}
	var out []string
	for t, target := range all {
		if target == img.Ref() {
			out = append(out, t)
		}
	}
	sort.Strings(out)
	return out, nil
}

// readTag returns a tag's target, checked to be a "name:N" reference.
func (s *Store) readTag(name, tag string) (string, error) {
	p := s.tagPath(name, tag)
	data, err := os.ReadFile(p)
	if err != nil {
		return "", fmt.Errorf("read tag %s:%s: %w", name, tag, err)
	}
	target := strings.TrimSpace(string(data))
	if _, v, err := ParseRef(target); err != nil || v == 0 {
		return "", fmt.Errorf("read tag %s:%s: %s holds %q, not NAME:VERSION (the file is damaged; move the tag with 'jailmgr image tag REF %s:%s')", name, tag, p, target, name, tag)
	}
	return target, nil
}

// resolveTag resolves "NAME:TAG".
func (s *Store) resolveTag(ref string, manifest bool) (*Image, error) {
	name, tag, err := ParseTag(ref)
	if err != nil {
		return nil, err
	}
	target, err := s.readTag(name, tag)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, s.noTag(ref, name)
	}
	if err != nil {
		return nil, err
	}
	tname, v, _ := ParseRef(target)
	img, err := s.load(tname, v, manifest)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("resolve %s: %w: %s is gone (move the tag with 'jailmgr image tag REF %s' or remove it with 'jailmgr image untag %s')",
			ref, ErrDanglingTag, target, ref, ref)
	}
	return img, err
}

// noTag is the error for a tag that does not exist, listing the tags the
// name has.
func (s *Store) noTag(ref, name string) error {
	var have []string
	if all, err := s.Tags(); err == nil {
		for t := range all {
			if strings.HasPrefix(t, name+":") {
				have = append(have, t)
			}
		}
	}
	sort.Strings(have)
	hint := "no tags of " + name + " exist; make one with 'jailmgr image tag REF " + ref + "'"
	if len(have) > 0 {
		hint = "tags of " + name + ": " + strings.Join(have, ", ")
	}
	if strings.HasSuffix(ref, ":latest") {
		hint += "; " + name + " alone names its newest version"
	}
	return fmt.Errorf("%w: no tag %s (%s)", ErrNotFound, ref, hint)
}

// removeTemps removes the temporary files a crashed Tag left in dir.
func removeTemps(dir string) {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") && strings.HasSuffix(e.Name(), ".tmp") {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}
