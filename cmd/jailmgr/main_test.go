package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"jailmgr/store"
)

// jailmgr runs the command line in-process.
func jailmgr(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func TestUsageErrors(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	cfg := filepath.Join(t.TempDir(), "none.conf")
	for _, args := range [][]string{
		{"bootstrap"},
		{"bootstrap", "bookworm", "--variant", "huge"},
		{"bootstrap", "nosuch"},
		{"bootstrap", "bookworm", "--no-such-flag"},
		{"image", "show"},
	} {
		code, _, stderr := jailmgr(t, append([]string{"--store", dir, "--config", cfg}, args...)...)
		if code != 2 || !strings.HasPrefix(stderr, "jailmgr: ") {
			t.Errorf("%v: exit %d, stderr %q; want 2 and a jailmgr: message", args, code, stderr)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("a bad command line created the store: %v", err)
	}
}

func TestImageCommands(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(t.TempDir(), "none.conf")
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	stg, err := st.NewStaging()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stg.Commit("demo", &store.Manifest{Suite: "bookworm", Variant: "minbase", Arch: "amd64", Packages: []store.Package{{Name: "dash"}}}); err != nil {
		t.Fatal(err)
	}
	g := []string{"--store", dir, "--config", cfg}
	code, out, _ := jailmgr(t, append(g, "image", "list", "--json")...)
	var rows []imageRow
	if code != 0 || json.Unmarshal([]byte(out), &rows) != nil || len(rows) != 1 || rows[0].Name != "demo" || rows[0].Packages != 1 {
		t.Errorf("image list --json: exit %d, %q", code, out)
	}
	code, out, _ = jailmgr(t, append(g, "image", "show", "demo:1", "--json")...)
	var shown struct {
		Suite  string `json:"suite"`
		RootFS string `json:"rootfs"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &shown) != nil || shown.Suite != "bookworm" || !filepath.IsAbs(shown.RootFS) {
		t.Errorf("image show --json: exit %d, %q", code, out)
	}
	if code, _, stderr := jailmgr(t, append(g, "image", "show", "demo:9")...); code != 1 || !strings.Contains(stderr, "not found") {
		t.Errorf("image show demo:9: exit %d, %q", code, stderr)
	}
	if code, _, _ := jailmgr(t, append(g, "image", "rm", "demo")...); code != 0 {
		t.Errorf("image rm demo: exit %d", code)
	}
	if code, out, _ := jailmgr(t, append(g, "image", "list", "--json")...); code != 0 || strings.TrimSpace(out) != "[]" {
		t.Errorf("image list after rm: exit %d, %q", code, out)
	}
}

func TestBrokenConfigRefused(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "jailmgr.conf")
	os.WriteFile(cfg, []byte("[jailmgr]\nmirrors = x\n"), 0o644)
	code, _, stderr := jailmgr(t, "--store", t.TempDir(), "--config", cfg, "image", "list")
	if code != 1 || !strings.Contains(stderr, cfg+":2: mirrors: unknown key") {
		t.Errorf("exit %d, stderr %q; want the file:line of the bad key", code, stderr)
	}
}

func TestConfigCheckAndJails(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(t.TempDir(), "jailmgr.conf")
	os.WriteFile(cfg, []byte("[build]\nimage = nosuch\naliases = b\nmemory = 1G\n"), 0o644)
	g := []string{"--store", dir, "--config", cfg}
	code, _, stderr := jailmgr(t, append(g, "config", "check")...)
	if code != 1 || !strings.Contains(stderr, cfg+":2: image: store: image not found: nosuch") {
		t.Errorf("config check with a missing image: exit %d, %q", code, stderr)
	}
	code, out, _ := jailmgr(t, append(g, "jail", "list")...)
	if code != 0 || !strings.Contains(out, "build") || !strings.Contains(out, "memory 1.0G") {
		t.Errorf("jail list: exit %d, %q", code, out)
	}
	code, out, _ = jailmgr(t, append(g, "jail", "show", "b", "--json")...)
	if code != 0 || !strings.Contains(out, `"name": "build"`) {
		t.Errorf("jail show by alias: exit %d, %q", code, out)
	}
	if code, _, stderr := jailmgr(t, append(g, "jail", "show", "nope")...); code != 1 || !strings.Contains(stderr, `no jail "nope"`) {
		t.Errorf("jail show nope: exit %d, %q", code, stderr)
	}
	os.WriteFile(cfg, []byte("[build]\nimage = x\npids = many\n"), 0o644)
	for _, args := range [][]string{{"config", "check"}, {"jail", "list"}, {"image", "list"}} {
		if code, _, stderr := jailmgr(t, append(g, args...)...); code != 1 || !strings.Contains(stderr, cfg+":3: pids:") {
			t.Errorf("%v with a broken config: exit %d, %q", args, code, stderr)
		}
	}
}
