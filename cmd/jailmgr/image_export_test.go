package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"jailmgr/store"
)

func TestImageExportImport(t *testing.T) {
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
	os.MkdirAll(filepath.Join(stg.Root(), "usr/bin"), 0o755)
	os.WriteFile(filepath.Join(stg.Root(), "usr/bin/tool"), bytes.Repeat([]byte("tool "), 100000), 0o755)
	os.WriteFile(filepath.Join(stg.Root(), "usr/bin/other"), bytes.Repeat([]byte("other"), 100000), 0o755)
	if _, err := stg.Commit("demo", &store.Manifest{Suite: "bookworm", Variant: "minbase", Arch: "amd64"}); err != nil {
		t.Fatal(err)
	}
	g := []string{"--store", dir, "--config", cfg}
	out := t.TempDir()
	for _, format := range []string{"tar", "oci"} {
		file := filepath.Join(out, "demo."+format)
		code, stdout, stderr := jailmgr(t, append(g, "image", "export", "demo:1", "--format", format, "-o", file)...)
		// Not a terminal: plain progress lines, then what was written.
		if code != 0 || stdout != "" || !strings.Contains(stderr, "exporting demo:1: 50% (") ||
			!strings.Contains(stderr, "exporting demo:1: 100% (976.6K of 976.6K)") || !strings.Contains(stderr, "exported demo:1 to "+file) {
			t.Errorf("export --format %s: exit %d, stdout %q, stderr %q", format, code, stdout, stderr)
		}
		code, stdout, stderr = jailmgr(t, append(g, "image", "import", file, "--name", "copy")...)
		if code != 0 || !strings.HasPrefix(stdout, "copy:") || !strings.Contains(stderr, "importing "+file+": 100%") {
			t.Errorf("import of the %s export: exit %d, stdout %q, stderr %q", format, code, stdout, stderr)
		}
		code, stdout, stderr = jailmgr(t, append(g, "-q", "image", "export", "demo:1", "--format", format, "-o", file)...)
		if code != 0 || stdout != "" || stderr != "" {
			t.Errorf("export -q: exit %d, stdout %q, stderr %q; want silence", code, stdout, stderr)
		}
		code, stdout, stderr = jailmgr(t, append(g, "-q", "image", "import", file)...)
		if code != 0 || stdout != "demo:2\n" && stdout != "demo:3\n" || stderr != "" {
			t.Errorf("import -q without --name: exit %d, stdout %q, stderr %q; want demo:N only", code, stdout, stderr)
		}
	}
	if data, err := os.ReadFile(filepath.Join(dir, "images/copy/2/rootfs/usr/bin/tool")); err != nil || !bytes.Equal(data, bytes.Repeat([]byte("tool "), 100000)) {
		t.Errorf("copy:2 does not hold usr/bin/tool: %v", err)
	}
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"image", "export", "demo"}, 2, "needs -o FILE"},
		{[]string{"image", "export", "demo", "-o", filepath.Join(out, "x"), "--format", "zip"}, 2, `--format "zip"`},
		{[]string{"image", "export", "nosuch", "-o", filepath.Join(out, "x")}, 1, "image not found"},
		{[]string{"image", "export", "demo", "-o", filepath.Join(out, "no/such/dir/x")}, 1, "no such file"},
		{[]string{"image", "import", filepath.Join(out, "demo.tar"), "--name", "../x"}, 2, `--name "../x"`},
		{[]string{"image", "import", cfg}, 1, "no such file"},
	} {
		code, _, stderr := jailmgr(t, append(g, c.args...)...)
		if code != c.code || !strings.Contains(stderr, c.msg) {
			t.Errorf("%v: exit %d, %q; want %d and %q", c.args, code, stderr, c.code, c.msg)
		}
	}
	ents, _ := os.ReadDir(out)
	if len(ents) != 2 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("the output folder holds %v, want the two exports only (no partial or temporary file)", names)
	}
}
