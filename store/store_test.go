package store

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestParseRef(t *testing.T) {
	for ref, want := range map[string]struct {
		name string
		v    int
	}{"bookworm": {"bookworm", 0}, "focal-build:3": {"focal-build", 3}, "a.b_c:12": {"a.b_c", 12}} {
		n, v, err := ParseRef(ref)
		if err != nil || n != want.name || v != want.v {
			t.Errorf("ParseRef(%q) = %q, %d, %v", ref, n, v, err)
		}
	}
	for _, ref := range []string{"", ":1", "x:0", "x:-1", "x:a", "../x", "a/b", ".hidden", "x:1:2"} {
		if _, _, err := ParseRef(ref); !errors.Is(err, ErrBadRef) {
			t.Errorf("ParseRef(%q) error = %v, want ErrBadRef", ref, err)
		}
	}
}

func stage(t *testing.T, s *Store, marker string) *Staging {
	t.Helper()
	stg, err := s.NewStaging()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(stg.Root(), "marker"), []byte(marker), 0o644); err != nil {
		t.Fatal(err)
	}
	return stg
}

func TestCommitResolveRemove(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range []string{"one", "two"} {
		img, err := stage(t, s, m).Commit("deb", &Manifest{Suite: "bookworm"})
		if err != nil {
			t.Fatal(err)
		}
		if img.Version != i+1 || img.Manifest.Name != "deb" || img.Manifest.Version != i+1 {
			t.Errorf("commit %d gave %s (manifest %s:%d)", i, img.Ref(), img.Manifest.Name, img.Manifest.Version)
		}
	}
	newest, err := s.Resolve("deb")
	if err != nil || newest.Version != 2 {
		t.Fatalf("Resolve(deb) = %v, %v; want version 2", newest, err)
	}
	if data, _ := os.ReadFile(filepath.Join(newest.RootFS(), "marker")); string(data) != "two" {
		t.Errorf("deb:2 rootfs holds %q", data)
	}
	if _, err := s.Resolve("deb:3"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Resolve(deb:3) error = %v, want ErrNotFound", err)
	}
	if _, err := s.Resolve("nosuch"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Resolve(nosuch) error = %v, want ErrNotFound", err)
	}
	if _, err := s.Remove("deb:1"); err != nil {
		t.Fatal(err)
	}
	imgs, err := s.Images()
	if err != nil || len(imgs) != 1 || imgs[0].Ref() != "deb:2" {
		t.Errorf("after rm deb:1: %v, %v", imgs, err)
	}
	// The next version keeps counting from the newest.
	img, err := stage(t, s, "three").Commit("deb", &Manifest{})
	if err != nil || img.Version != 3 {
		t.Errorf("commit after rm = %v, %v; want deb:3", img, err)
	}
	if ents, _ := os.ReadDir(filepath.Join(s.Dir, "staging")); len(ents) != 0 {
		t.Errorf("staging holds %d entries after commits and rm", len(ents))
	}
}

func TestAbortAndSweep(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	live := stage(t, s, "live")
	// A leftover of a dead process: a staging folder whose lock nobody holds.
	dead := filepath.Join(dir, "staging", "deadbeef")
	if err := os.MkdirAll(filepath.Join(dead, "rootfs", "ro"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(dead, "rootfs", "ro"), 0o500)
	if _, err := Open(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("dead staging area survived Open: %v", err)
	}
	if _, err := os.Stat(live.Dir); err != nil {
		t.Errorf("live staging area was swept: %v", err)
	}
	if err := live.Abort(); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "staging")); len(ents) != 0 {
		t.Errorf("staging holds %d entries after Abort", len(ents))
	}
}

func TestRemoveRefusesMountedTree(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("mounting needs root; CI runs as root")
	}
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	img, err := stage(t, s, "m").Commit("m", &Manifest{})
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(img.RootFS(), "mnt")
	os.MkdirAll(target, 0o755)
	if err := syscall.Mount("tmpfs", target, "tmpfs", 0, ""); err != nil {
		t.Skipf("cannot mount tmpfs: %v", err)
	}
	defer syscall.Unmount(target, syscall.MNT_DETACH)
	if _, err := s.Remove("m"); !errors.Is(err, ErrMounted) {
		t.Errorf("Remove of an image with a mount inside: err = %v, want ErrMounted", err)
	}
	if _, err := s.Resolve("m:1"); err != nil {
		t.Errorf("the image was lost: %v", err)
	}
}
