package bootstrap

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"jailmgr/store/tree"
)

func TestZZProf(t *testing.T) {
	dir := os.Getenv("PROF_CACHE")
	if dir == "" {
		t.Skip()
	}
	ents, _ := os.ReadDir(dir)
	var cands []*Candidate
	for _, e := range ents {
		st, _ := os.Stat(filepath.Join(dir, e.Name()))
		cands = append(cands, &Candidate{Name: "x", SHA256: strings.TrimSuffix(e.Name(), ".deb"), Size: st.Size()})
	}
	rootDir := t.TempDir()
	root, _ := tree.OpenRoot(rootDir)
	u, _ := newUnpacker(root, dir, true)
	u.skipNameCheck = true
	_, err := u.unpackAll(context.Background(), 2, cands)
	if err != nil {
		t.Fatal(err)
	}
}
