package store

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// commitN commits n versions of name, each with its own marker.
func commitN(t *testing.T, s *Store, name string, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if _, err := stage(t, s, name+string(rune('a'+i))).Commit(name, &Manifest{}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestTagResolveMoveUntag(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	commitN(t, s, "deb", 3)
	commitN(t, s, "other", 1)

	img, prev, err := s.Tag("deb:1", "deb:stable")
	if err != nil || img.Ref() != "deb:1" || prev != "" {
		t.Fatalf("Tag(deb:1, deb:stable) = %v, %q, %v", img, prev, err)
	}
	// A tag's name need not be its image's; a tag given as REF is followed.
	if img, _, err := s.Tag("deb:stable", "prod:current"); err != nil || img.Ref() != "deb:1" {
		t.Fatalf("Tag(deb:stable, prod:current) = %v, %v", img, err)
	}
	if img, err := s.Resolve("prod:current"); err != nil || img.Ref() != "deb:1" {
		t.Errorf("Resolve(prod:current) = %v, %v; want deb:1", img, err)
	}
	if img, err := s.Resolve("deb:stable"); err != nil || img.Ref() != "deb:1" {
		t.Errorf("Resolve(deb:stable) = %v, %v; want deb:1", img, err)
	}
	// Names and versions resolve as before.
	if img, err := s.Resolve("deb"); err != nil || img.Ref() != "deb:3" {
		t.Errorf("Resolve(deb) = %v, %v; want deb:3", img, err)
	}
	if img, err := s.Resolve("deb:2"); err != nil || img.Ref() != "deb:2" {
		t.Errorf("Resolve(deb:2) = %v, %v", img, err)
	}

	// Moving a tag replaces its target and says what it was.
	img, prev, err = s.Tag("deb", "deb:stable")
	if err != nil || img.Ref() != "deb:3" || prev != "deb:1" {
		t.Fatalf("moving deb:stable = %v, %q, %v; want deb:3 from deb:1", img, prev, err)
	}
	if img, err := s.Resolve("deb:stable"); err != nil || img.Ref() != "deb:3" {
		t.Errorf("Resolve(deb:stable) after the move = %v, %v; want deb:3", img, err)
	}
	if ents, _ := os.ReadDir(filepath.Join(s.Dir, "tags", "deb")); len(ents) != 1 {
		t.Errorf("tags/deb holds %d files after a move, want 1 (no temporary left)", len(ents))
	}

	tags, err := s.Tags()
	want := map[string]string{"deb:stable": "deb:3", "prod:current": "deb:1"}
	if err != nil || !reflect.DeepEqual(tags, want) {
		t.Errorf("Tags() = %v, %v; want %v", tags, err, want)
	}
	deb3, _ := s.Resolve("deb:3")
	if got, err := s.TagsOf(deb3); err != nil || !reflect.DeepEqual(got, []string{"deb:stable"}) {
		t.Errorf("TagsOf(deb:3) = %v, %v", got, err)
	}
	deb2, _ := s.Resolve("deb:2")
	if got, err := s.TagsOf(deb2); err != nil || len(got) != 0 {
		t.Errorf("TagsOf(deb:2) = %v, %v; want none", got, err)
	}

	if target, err := s.Untag("deb:stable"); err != nil || target != "deb:3" {
		t.Errorf("Untag(deb:stable) = %q, %v", target, err)
	}
	if _, err := s.Resolve("deb:stable"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Resolve of an removed tag: %v, want ErrNotFound", err)
	}
	if _, err := s.Untag("deb:stable"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Untag twice: %v, want ErrNotFound", err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir, "tags", "deb")); !os.IsNotExist(err) {
		t.Errorf("tags/deb survives its last tag: %v", err)
	}
	// The image is untouched by untagging.
	if _, err := s.Resolve("deb:3"); err != nil {
		t.Error(err)
	}
}

func TestDanglingTag(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	commitN(t, s, "deb", 2)
	if _, _, err := s.Tag("deb:1", "deb:old"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Remove("deb:1"); err != nil {
		t.Fatal(err)
	}
	_, err = s.Resolve("deb:old")
	if !errors.Is(err, ErrDanglingTag) || !strings.Contains(err.Error(), "deb:1") || !strings.Contains(err.Error(), "untag deb:old") {
		t.Errorf("Resolve of a dangling tag: %v; want ErrDanglingTag naming deb:1 and how to untag", err)
	}
	// Dangling tags are listed, so that they can be cleaned up.
	if tags, err := s.Tags(); err != nil || tags["deb:old"] != "deb:1" {
		t.Errorf("Tags() = %v, %v", tags, err)
	}
	if _, _, err := s.Tag("deb:old", "deb:x"); !errors.Is(err, ErrDanglingTag) {
		t.Errorf("tagging through a dangling tag: %v", err)
	}
	// Moving the tag mends it.
	if _, _, err := s.Tag("deb:2", "deb:old"); err != nil {
		t.Fatal(err)
	}
	if img, err := s.Resolve("deb:old"); err != nil || img.Ref() != "deb:2" {
		t.Errorf("Resolve after mending = %v, %v", img, err)
	}
}

func TestTagBadInput(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	commitN(t, s, "deb", 1)
	for _, tag := range []string{"deb", "deb:", "deb:12", ":x", "deb:.x", "deb:-x", "deb:a/b", "deb:a:b", "../x:y", "deb:a b", "deb:" + strings.Repeat("x", 129)} {
		if _, _, err := s.Tag("deb", tag); !errors.Is(err, ErrBadRef) {
			t.Errorf("Tag(deb, %q) error = %v, want ErrBadRef", tag, err)
		}
		if _, err := s.Untag(tag); !errors.Is(err, ErrBadRef) {
			t.Errorf("Untag(%q) error = %v, want ErrBadRef", tag, err)
		}
	}
	for _, ref := range []string{"deb:a/b", "deb:-1", "deb:.x", "deb:1:2"} {
		if _, err := s.Resolve(ref); !errors.Is(err, ErrBadRef) {
			t.Errorf("Resolve(%q) error = %v, want ErrBadRef", ref, err)
		}
	}
	if _, _, err := s.Tag("nosuch", "deb:x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("tagging a missing image: %v, want ErrNotFound", err)
	}
	_, err = s.Resolve("deb:latest")
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "deb alone names its newest version") {
		t.Errorf("Resolve(deb:latest) = %v; want ErrNotFound with a hint", err)
	}
	if tags, err := s.Tags(); err != nil || len(tags) != 0 {
		t.Errorf("bad input made tags: %v, %v", tags, err)
	}
	// A damaged tag file is reported, naming it, not taken for a reference.
	os.MkdirAll(filepath.Join(s.Dir, "tags", "deb"), 0o755)
	os.WriteFile(filepath.Join(s.Dir, "tags", "deb", "bad"), []byte("../../etc:1\n"), 0o644)
	if _, err := s.Resolve("deb:bad"); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("Resolve of a damaged tag: %v", err)
	}
	if _, err := s.Untag("deb:bad"); err != nil {
		t.Errorf("a damaged tag cannot be removed: %v", err)
	}
}

// Locate finds what Resolve finds, by name, version or tag, and fails as
// it does, without reading the manifest.
func TestLocateAgreesWithResolve(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	commitN(t, s, "deb", 3)
	if _, _, err := s.Tag("deb:2", "deb:stable"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Tag("deb:1", "deb:old"); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"deb", "deb:1", "deb:3", "deb:stable"} {
		want, err := s.Resolve(ref)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Locate(ref)
		if err != nil || got.Ref() != want.Ref() || got.Dir != want.Dir || got.RootFS() != want.RootFS() {
			t.Errorf("Locate(%s) = %v, %v; Resolve gives %v", ref, got, err, want)
		}
	}
	if _, err := s.Remove("deb:1"); err != nil {
		t.Fatal(err)
	}
	for ref, want := range map[string]error{"deb:1": ErrNotFound, "nope": ErrNotFound, "deb:old": ErrDanglingTag, "deb:nope": ErrNotFound} {
		_, rerr := s.Resolve(ref)
		_, lerr := s.Locate(ref)
		if !errors.Is(lerr, want) || lerr.Error() != rerr.Error() {
			t.Errorf("Locate(%s) = %v; Resolve says %v", ref, lerr, rerr)
		}
	}
	// A version folder without a manifest is not an image.
	if err := os.Remove(filepath.Join(s.Dir, "images", "deb", "3", "manifest.json")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Locate("deb:3"); err == nil {
		t.Error("Locate found a version without its manifest")
	}
}
