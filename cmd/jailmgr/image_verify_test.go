package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"jailmgr/store"
)

func TestImageVerify(t *testing.T) {
	st, g := testStore(t, "demo", map[string]string{"etc/a": "a", "etc/b": "b", "usr/bin/tool": "tool"})
	code, out, _ := jailmgr(t, append(g, "image", "verify", "demo")...)
	if code != 0 || out != "demo:1: OK (6 indexed paths)\n" {
		t.Errorf("verify of an intact image: exit %d, %q; want 0 and one OK line", code, out)
	}
	code, out, _ = jailmgr(t, append(g, "image", "verify", "demo", "--json")...)
	var r store.VerifyReport
	if code != 0 || json.Unmarshal([]byte(out), &r) != nil || !r.OK() || !r.Indexed || r.Changed == nil {
		t.Errorf("verify --json of an intact image: exit %d, %s", code, out)
	}

	img, _ := st.Resolve("demo")
	os.WriteFile(filepath.Join(img.RootFS(), "usr/bin/tool"), []byte("TOOL"), 0o644)
	os.Remove(filepath.Join(img.RootFS(), "etc/a"))
	os.WriteFile(filepath.Join(img.RootFS(), "etc/c"), nil, 0o644)
	os.Chmod(filepath.Join(img.RootFS(), "etc/b"), 0o600)
	code, out, stderr := jailmgr(t, append(g, "image", "verify", "demo:1")...)
	for _, want := range []string{
		"changed  etc/b (metadata): mode 0644 → 0600\n",
		"changed  usr/bin/tool (content and metadata): sha256 ",
		"missing  etc/a\n",
		"extra    etc/c\n",
		"demo:1: 2 changed, 1 missing, 1 extra (6 indexed paths)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("verify output lacks %q:\n%s", want, out)
		}
	}
	if code != 1 || stderr != "note: no dpkg md5sums in the image: checked against the file index only\n" {
		t.Errorf("verify of a changed image: exit %d, stderr %q; want 1 and a note, no error", code, stderr)
	}
	code, out, _ = jailmgr(t, append(g, "image", "verify", "--json", "demo")...)
	r = store.VerifyReport{}
	if code != 1 || json.Unmarshal([]byte(out), &r) != nil || len(r.Changed) != 2 || len(r.Missing) != 1 || r.Extra[0].Path != "etc/c" {
		t.Errorf("verify --json of a changed image: exit %d, %s", code, out)
	}

	// Without an index, and without md5sums, there is nothing to check.
	os.Remove(filepath.Join(img.Dir, store.IndexFile))
	if code, _, stderr := jailmgr(t, append(g, "image", "verify", "demo")...); code != 1 || !strings.Contains(stderr, "nothing to check") {
		t.Errorf("verify without index or md5sums: exit %d, %q", code, stderr)
	}
	if code, _, stderr := jailmgr(t, append(g, "image", "verify", "nosuch")...); code != 1 || !strings.Contains(stderr, "image not found") {
		t.Errorf("verify nosuch: exit %d, %q", code, stderr)
	}
	if code, _, _ := jailmgr(t, append(g, "image", "verify")...); code != 2 {
		t.Errorf("verify without REF: exit %d, want 2", code)
	}
}

func TestImageDiff(t *testing.T) {
	_, g := testStore(t, "demo", map[string]string{"etc/a": "a", "etc/b": "b"}, map[string]string{"etc/a": "a", "etc/b": "B", "etc/c": "c"})
	code, out, _ := jailmgr(t, append(g, "image", "diff", "demo:1", "demo:2")...)
	for _, want := range []string{"file added       etc/c\n", "file changed     etc/b (content", "demo:1 → demo:2: packages 0 added, 0 removed, 0 changed; files 1 added, 0 removed, 1 changed\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("diff output lacks %q:\n%s", want, out)
		}
	}
	if code != 0 {
		t.Errorf("diff: exit %d", code)
	}
	code, out, _ = jailmgr(t, append(g, "image", "diff", "demo:2", "demo:1", "--json")...)
	var d store.DiffReport
	if code != 0 || json.Unmarshal([]byte(out), &d) != nil || strings.Join(d.FilesRemoved, ",") != "etc/c" || len(d.FilesChanged) != 1 || d.PackagesAdded == nil {
		t.Errorf("diff --json: exit %d, %s", code, out)
	}
	if code, _, stderr := jailmgr(t, append(g, "image", "diff", "demo:1", "demo:3")...); code != 1 || !strings.Contains(stderr, "not found") {
		t.Errorf("diff with a missing image: exit %d, %q", code, stderr)
	}
}
