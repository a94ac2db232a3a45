package bootstrap

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"jailmgr/debian/archivetest"
	"jailmgr/store/tree"
)

// TestMaliciousDebsRefused runs whole bootstraps whose packages try to
// write outside the root; each is refused and nothing lands outside.
func TestMaliciousDebsRefused(t *testing.T) {
	cases := map[string][]archivetest.File{
		"traversal":      {{Path: "./../../../../evil", Data: []byte("x"), Raw: true}},
		"absolute path":  {{Path: "/evil-abs", Data: []byte("x"), Raw: true}},
		"symlink escape": {{Path: "./usr/", Mode: os.ModeDir | 0o755, Raw: true}, {Path: "./usr/esc", Link: "OUTSIDE", Raw: true}, {Path: "./usr/esc/evil", Data: []byte("x"), Raw: true}},
		"relative symlink escape": {
			{Path: "./up", Link: "../../../../../../../..", Raw: true}, {Path: "./up/OUTSIDE_REL/evil", Data: []byte("x"), Raw: true},
		},
		"hard link out":                 {{Path: "./hl", HardLink: "../../../../OUTSIDE_REL/secret", Raw: true}},
		"symlink then directory":        {{Path: "./d", Link: "OUTSIDE", Raw: true}, {Path: "./d/", Mode: os.ModeDir | 0o755, Raw: true}, {Path: "./d/evil", Data: []byte("x"), Raw: true}},
		"directory replaced by symlink": {{Path: "./d/", Mode: os.ModeDir | 0o755, Raw: true}, {Path: "./d", Link: "OUTSIDE", Raw: true}, {Path: "./d/evil", Data: []byte("x"), Raw: true}},
	}
	for name, files := range cases {
		t.Run(name, func(t *testing.T) {
			outside := t.TempDir()
			if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("keep"), 0o644); err != nil {
				t.Fatal(err)
			}
			for i := range files {
				if files[i].Link == "OUTSIDE" {
					files[i].Link = outside
				}
				files[i].Path = replaceRel(files[i].Path, outside)
				files[i].HardLink = replaceRel(files[i].HardLink, outside)
			}
			a := &archivetest.Archive{Suite: "bookworm", Codename: "bookworm", Packages: []archivetest.Package{
				{Name: "evil", Priority: "required", Files: files, Compression: "gz"},
			}}
			srv := archivetest.Serve(t, a)
			st := openStore(t)
			_, err := runBootstrap(t, options(srv), st)
			if err == nil {
				t.Fatal("bootstrap of a malicious package succeeded")
			}
			if !errors.Is(err, tree.ErrUnsafePath) && !errors.Is(err, tree.ErrConflict) {
				t.Errorf("err = %v, want ErrUnsafePath or ErrConflict", err)
			}
			ents, _ := os.ReadDir(outside)
			if len(ents) != 1 {
				t.Errorf("outside the root now holds %d entries, want only the secret", len(ents))
			}
			if data, _ := os.ReadFile(filepath.Join(outside, "secret")); string(data) != "keep" {
				t.Errorf("outside secret changed to %q", data)
			}
			for _, p := range []string{"/evil", "/evil-abs", filepath.Join(filepath.Dir(st.Dir), "evil")} {
				if _, err := os.Lstat(p); err == nil {
					t.Errorf("%s was written", p)
				}
			}
			assertNothingLeft(t, st, cachedHashes(srv, "evil")...)
		})
	}
}

// replaceRel turns OUTSIDE_REL in a path into the outside folder without its
// leading slash, for names that climb with "..".
func replaceRel(p, outside string) string {
	const mark = "OUTSIDE_REL"
	for i := 0; i+len(mark) <= len(p); i++ {
		if p[i:i+len(mark)] == mark {
			return p[:i] + outside[1:] + p[i+len(mark):]
		}
	}
	return p
}

// cachedHashes are the hashes of packages that verify (and so may be cached).
func cachedHashes(srv *archivetest.Server, names ...string) []string {
	var out []string
	for _, n := range names {
		data, _ := srv.File(srv.PoolPath(n))
		out = append(out, sha256hex(data))
	}
	return out
}
