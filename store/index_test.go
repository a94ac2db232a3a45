package store

import (
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"testing"
	"time"
)

// fill writes a small tree: two folders, files, a symlink.
func fill(t *testing.T, root string, changed string) {
	t.Helper()
	when := time.Unix(1700000000, 0)
	for name, body := range map[string]string{"etc/a.conf": "a", "etc/b.conf": changed, "usr/bin/tool": "tool", "a.txt": "x"} {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, when, when)
	}
	if err := os.Symlink("usr/bin", filepath.Join(root, "bin")); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"etc", "usr/bin", "usr", "."} {
		os.Chtimes(filepath.Join(root, d), when, when)
	}
}

func TestIndexOrderAndRoundTrip(t *testing.T) {
	root := t.TempDir()
	fill(t, root, "b")
	os.MkdirAll(filepath.Join(root, "a"), 0o755)
	os.WriteFile(filepath.Join(root, "a", "b"), nil, 0o600)
	entries, err := BuildIndex(root)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, e := range entries {
		paths = append(paths, e.Path)
	}
	want := []string{"a", "a/b", "a.txt", "bin", "etc", "etc/a.conf", "etc/b.conf", "usr", "usr/bin", "usr/bin/tool"}
	if !slicesEqual(paths, want) {
		t.Fatalf("index paths %v, want %v", paths, want)
	}
	if !sort.SliceIsSorted(paths, func(i, j int) bool { return PathLess(paths[i], paths[j]) }) {
		t.Error("PathLess disagrees with the walk order")
	}
	f := filepath.Join(t.TempDir(), IndexFile)
	if err := WriteIndex(f, entries); err != nil {
		t.Fatal(err)
	}
	back, err := ReadIndex(f)
	if err != nil || len(back) != len(entries) {
		t.Fatalf("ReadIndex: %d entries, %v", len(back), err)
	}
	for i := range back {
		if !back[i].Same(&entries[i]) {
			t.Errorf("entry %d changed in the round trip: %+v vs %+v", i, back[i], entries[i])
		}
	}
	if e := entries[2]; e.Type != TypeFile || e.SHA256 != "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881" || e.Size != 1 {
		t.Errorf("a.txt indexed as %+v", e)
	}
	if e := entries[3]; e.Type != TypeSymlink || e.Link != "usr/bin" {
		t.Errorf("bin indexed as %+v", e)
	}
}

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestCommitSharesUnchangedFiles commits two versions that differ in one
// file: the others are hard links to the first version's, folder times stay
// as indexed, and the index matches the tree.
func TestCommitSharesUnchangedFiles(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var imgs []*Image
	for _, b := range []string{"one", "two"} {
		stg, err := s.NewStaging()
		if err != nil {
			t.Fatal(err)
		}
		fill(t, stg.Root(), b)
		img, err := stg.Commit("x", &Manifest{})
		if err != nil {
			t.Fatal(err)
		}
		if b == "two" && stg.Shared != 6 { // a + tool + x
			t.Errorf("second commit shared %d bytes, want 6", stg.Shared)
		}
		imgs = append(imgs, img)
	}
	ino := func(img *Image, p string) uint64 {
		var st syscall.Stat_t
		if err := syscall.Lstat(filepath.Join(img.RootFS(), p), &st); err != nil {
			t.Fatal(err)
		}
		return st.Ino
	}
	for _, p := range []string{"etc/a.conf", "usr/bin/tool", "a.txt"} {
		if ino(imgs[0], p) != ino(imgs[1], p) {
			t.Errorf("%s is not shared between versions", p)
		}
	}
	if ino(imgs[0], "etc/b.conf") == ino(imgs[1], "etc/b.conf") {
		t.Error("etc/b.conf differs but was shared")
	}
	idx, err := imgs[1].Index()
	if err != nil {
		t.Fatal(err)
	}
	now, err := BuildIndex(imgs[1].RootFS())
	if err != nil {
		t.Fatal(err)
	}
	for i := range idx {
		if !idx[i].Same(&now[i]) || idx[i].MTime != now[i].MTime {
			t.Errorf("after sharing, %s is %+v; its index says %+v", idx[i].Path, now[i], idx[i])
		}
	}
}
