package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"jailmgr/store"
)

// testStore makes a store with versions committed from the given files
// (one map per version) and returns the global flags that use it.
func testStore(t *testing.T, name string, versions ...map[string]string) (st *store.Store, global []string) {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	when := time.Unix(1700000000, 0) // so that unchanged files are the same in every version
	for _, files := range versions {
		stg, err := st.NewStaging()
		if err != nil {
			t.Fatal(err)
		}
		for p, body := range files {
			os.MkdirAll(filepath.Join(stg.Root(), filepath.Dir(p)), 0o755)
			if err := os.WriteFile(filepath.Join(stg.Root(), p), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			os.Chtimes(filepath.Join(stg.Root(), p), when, when)
		}
		if _, err := stg.Commit(name, &store.Manifest{Suite: "bookworm"}); err != nil {
			t.Fatal(err)
		}
	}
	return st, []string{"--store", dir, "--config", filepath.Join(t.TempDir(), "none.conf")}
}

func TestImageTagCommands(t *testing.T) {
	_, g := testStore(t, "demo", map[string]string{"a": "1"}, map[string]string{"a": "2"})
	if code, _, stderr := jailmgr(t, append(g, "image", "tag", "demo:1", "demo:stable")...); code != 0 || !strings.Contains(stderr, "tagged demo:stable: demo:1") {
		t.Fatalf("image tag: exit %d, %q", code, stderr)
	}
	code, out, _ := jailmgr(t, append(g, "image", "list", "--json")...)
	var rows []imageRow
	if code != 0 || json.Unmarshal([]byte(out), &rows) != nil || len(rows) != 2 ||
		strings.Join(rows[0].Tags, ",") != "demo:stable" || rows[1].Tags == nil || len(rows[1].Tags) != 0 {
		t.Errorf("image list --json with a tag: exit %d, %s", code, out)
	}
	code, out, _ = jailmgr(t, append(g, "image", "list")...)
	if code != 0 || !strings.Contains(out, "TAGS") || !strings.Contains(out, "demo:stable") {
		t.Errorf("image list: exit %d, %q", code, out)
	}
	// The tag works as a reference; show lists it.
	code, out, _ = jailmgr(t, append(g, "image", "show", "demo:stable", "--json")...)
	var shown struct {
		Version int      `json:"version"`
		Tags    []string `json:"tags"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &shown) != nil || shown.Version != 1 || strings.Join(shown.Tags, ",") != "demo:stable" {
		t.Errorf("image show demo:stable --json: exit %d, %s", code, out)
	}
	if code, out, _ := jailmgr(t, append(g, "image", "show", "demo:1")...); code != 0 || !strings.Contains(out, "tags:       demo:stable\n") {
		t.Errorf("image show: exit %d, %q", code, out)
	}

	// Moving it says from where.
	if code, _, stderr := jailmgr(t, append(g, "image", "tag", "demo", "demo:stable")...); code != 0 || !strings.Contains(stderr, "moved demo:stable from demo:1 to demo:2") {
		t.Errorf("moving a tag: exit %d, %q", code, stderr)
	}
	if code, out, _ := jailmgr(t, append(g, "image", "show", "demo:stable", "--json")...); code != 0 || !strings.Contains(out, `"version": 2`) {
		t.Errorf("after the move: exit %d, %s", code, out)
	}

	// Bad input: exit 1 and a message that says what a tag is.
	for _, args := range [][]string{
		{"image", "tag", "demo", "demo:7"},
		{"image", "tag", "demo", "de/mo:x"},
		{"image", "tag", "nosuch", "demo:x"},
		{"image", "untag", "demo:nosuch"},
		{"image", "untag", "demo"},
		{"image", "show", "demo:nosuch"},
	} {
		code, _, stderr := jailmgr(t, append(g, args...)...)
		if code != 1 || !strings.HasPrefix(stderr, "jailmgr: store: ") {
			t.Errorf("%v: exit %d, %q; want 1 and the store's error", args, code, stderr)
		}
	}
	if code, _, _ := jailmgr(t, append(g, "image", "tag", "demo")...); code != 2 {
		t.Errorf("image tag with one argument: exit %d, want 2", code)
	}

	// A dangling tag: a clear error where it is used, a warning in list.
	jailmgr(t, append(g, "image", "tag", "demo:1", "demo:old")...)
	if code, _, _ := jailmgr(t, append(g, "image", "rm", "demo:1")...); code != 0 {
		t.Fatal("image rm demo:1 failed")
	}
	if code, _, stderr := jailmgr(t, append(g, "image", "show", "demo:old")...); code != 1 || !strings.Contains(stderr, "removed image version") || !strings.Contains(stderr, "untag demo:old") {
		t.Errorf("show a dangling tag: exit %d, %q", code, stderr)
	}
	if code, _, stderr := jailmgr(t, append(g, "image", "list")...); code != 0 || !strings.Contains(stderr, "tag demo:old points at demo:1, which was removed") {
		t.Errorf("list with a dangling tag: exit %d, %q", code, stderr)
	}
	if code, _, stderr := jailmgr(t, append(g, "image", "untag", "demo:old")...); code != 0 || !strings.Contains(stderr, "removed tag demo:old (it pointed at demo:1)") {
		t.Errorf("untag: exit %d, %q", code, stderr)
	}
	if code, _, stderr := jailmgr(t, append(g, "image", "list")...); code != 0 || stderr != "" {
		t.Errorf("list after untag: exit %d, %q", code, stderr)
	}
}
