package store

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func commitVersions(t *testing.T, s *Store, name string, n int, pkgSHA string) []*Image {
	t.Helper()
	var out []*Image
	for i := 0; i < n; i++ {
		stg := stage(t, s, name+strings.Repeat("x", i))
		img, err := stg.Commit(name, &Manifest{Packages: []Package{{Name: "p", Version: "1", SHA256: pkgSHA}}})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, img)
	}
	return out
}

// mountOver mounts an overlay with img as its lower layer, as a session does.
func mountOver(t *testing.T, img *Image) string {
	t.Helper()
	d := t.TempDir()
	for _, sub := range []string{"u", "w", "m"} {
		os.Mkdir(filepath.Join(d, sub), 0o755)
	}
	mnt := filepath.Join(d, "m")
	if err := unix.Mount("overlay", mnt, "overlay", 0, "lowerdir="+img.RootFS()+",upperdir="+filepath.Join(d, "u")+",workdir="+filepath.Join(d, "w")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
	return mnt
}

func TestRemoveRefusesInUse(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("mounts an overlay: run as root")
	}
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	imgs := commitVersions(t, s, "a", 2, "")
	mnt := mountOver(t, imgs[0])
	_, err = s.Remove("a:1")
	var inUse *InUseError
	if !errors.As(err, &inUse) || !slices.Equal(inUse.Mounts, []string{mnt}) || inUse.Busy {
		t.Fatalf("Remove of a version under a session = %v, want InUseError naming %s", err, mnt)
	}
	if !strings.Contains(err.Error(), "--force") {
		t.Errorf("the error does not say what to do: %v", err)
	}
	release, err := s.Use(imgs[1])
	if err != nil {
		t.Fatal(err)
	}
	if _, err = s.Remove("a:2"); !errors.As(err, &inUse) || !inUse.Busy {
		t.Fatalf("Remove of a version being read = %v, want a busy InUseError", err)
	}
	release()
	if _, err := s.Remove("a:2"); err != nil {
		t.Fatalf("Remove after the reader let go: %v", err)
	}
	unix.Unmount(mnt, 0)
	if _, err := s.Remove("a:1"); err != nil {
		t.Fatalf("Remove after the session ended: %v", err)
	}
}

func TestGC(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("mounts an overlay: run as root")
	}
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	used, unused, orphan := strings.Repeat("a", 64), strings.Repeat("b", 64), strings.Repeat("c", 64)
	for _, sha := range []string{used, unused, orphan} {
		os.WriteFile(s.CachePath(sha), []byte("deb"), 0o644)
	}
	os.WriteFile(filepath.Join(s.CacheDir(), "not-a-package"), nil, 0o644)
	imgs := commitVersions(t, s, "a", 4, unused)
	commitVersions(t, s, "b", 1, used)
	mountOver(t, imgs[1])
	if _, _, err := s.Tag("a:1", "a:keep"); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(s.Dir, "staging", "leftover"), 0o755); err != nil {
		t.Fatal(err)
	}

	// While a staging area is open, the cache is left alone.
	stg, err := s.NewStaging()
	if err != nil {
		t.Fatal(err)
	}
	rep, err := s.GC(GCOptions{Keep: 1, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.CacheSkipped {
		t.Error("gc pruned the cache while a staging area was open")
	}
	if !slices.Equal(rep.Removed, []string{"a:3"}) {
		t.Errorf("dry run would remove %v, want [a:3]", rep.Removed)
	}
	stg.Abort()

	rep, err = s.GC(GCOptions{Keep: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.Removed, []string{"a:3"}) || !slices.Equal(rep.KeptInUse, []string{"a:2"}) || !slices.Equal(rep.KeptTagged, []string{"a:1"}) {
		t.Errorf("gc removed %v, kept in use %v, kept tagged %v; want [a:3], [a:2], [a:1]", rep.Removed, rep.KeptInUse, rep.KeptTagged)
	}
	// Freed is the file system's free space after minus before: other
	// writers on the same disk move it either way, so it is not checked.
	if rep.Staging != 1 || rep.CacheSkipped {
		t.Errorf("gc report %+v: want one staging leftover swept, the cache pruned", rep)
	}
	var left []string
	all, _ := s.Images()
	for _, img := range all {
		left = append(left, img.Ref())
	}
	if !slices.Equal(left, []string{"a:1", "a:2", "a:4", "b:1"}) {
		t.Errorf("after gc the store holds %v", left)
	}
	for sha, want := range map[string]bool{used: true, unused: true, orphan: false} {
		_, err := os.Stat(s.CachePath(sha))
		if (err == nil) != want {
			t.Errorf("cache %s.deb present=%v, want %v", sha[:4], err == nil, want)
		}
	}
	if _, err := os.Stat(filepath.Join(s.CacheDir(), "not-a-package")); err != nil {
		t.Error("gc removed a file of the cache folder that is no package")
	}
}
