package seccomp

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadErrors checks that every refused profile says which file, and
// which line or field, is wrong.
func TestLoadErrors(t *testing.T) {
	cases := []struct {
		name, profile string
		want          []string // substrings of the error
		invalid       bool     // wraps ErrInvalidProfile
	}{
		{"syntax", "{\n\"defaultAction\": \"SCMP_ACT_ALLOW\",\n\"syscalls\": [,]\n}", []string{"line 3", "invalid character"}, false},
		{"type", "{\"defaultAction\": \"SCMP_ACT_ALLOW\",\n\"syscalls\": [{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\",\n \"args\": [{\"index\": \"one\"}]}]}", []string{"line 3", "index"}, false},
		{"kernel version", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"five"}}]}`, []string{"kernel version"}, false},
		{"no default", `{"syscalls":[]}`, []string{"defaultAction: missing"}, true},
		{"null", `null`, []string{"defaultAction: missing"}, true},
		{"default action", `{"defaultAction":"SCMP_ACT_MAYBE"}`, []string{`defaultAction: unknown action "SCMP_ACT_MAYBE"`}, true},
		{"default errno", `{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":70000}`, []string{"errnoRet 70000 is above 4095"}, true},
		{"notify", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_NOTIFY"}]}`, []string{"syscalls[0].action", "not supported"}, true},
		{"listener", `{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/x.sock"}`, []string{"listenerPath"}, true},
		{"action", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"},{"names":["write"],"action":"ALLOW"}]}`, []string{`syscalls[1].action: unknown action "ALLOW"`}, true},
		{"errno on allow", `{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","errnoRet":1}]}`, []string{"syscalls[0].action", "errnoRet is given for SCMP_ACT_ALLOW"}, true},
		{"operator", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":1,"op":"SCMP_CMP_XX"}]}]}`, []string{`syscalls[0].args[0].op: unknown operator "SCMP_CMP_XX"`}, true},
		{"index", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":6,"value":1,"op":"SCMP_CMP_EQ"}]}]}`, []string{"syscalls[0].args[0].index: 6 is not below 6"}, true},
		{"name and names", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"read","names":["write"],"action":"SCMP_ACT_ERRNO"}]}`, []string{"syscalls[0]: both name and names"}, true},
		{"no names", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"action":"SCMP_ACT_ERRNO"}]}`, []string{"syscalls[0]: no syscall names"}, true},
		{"empty name", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read",""],"action":"SCMP_ACT_ERRNO"}]}`, []string{"syscalls[0].names: empty name"}, true},
		{"null rule", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[null]}`, []string{"syscalls[0]: null"}, true},
		{"both arch lists", `{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],"archMap":[{"architecture":"SCMP_ARCH_X86_64"}]}`, []string{"both architectures and archMap"}, true},
		{"arch", `{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64","x86_64"]}`, []string{`architectures[1]: unknown architecture "x86_64"`}, true},
		{"sub-arch", `{"defaultAction":"SCMP_ACT_ALLOW","archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":["SCMP_ARCH_Z80"]}]}`, []string{"archMap[0].subArchitectures[0]"}, true},
	}
	dir := t.TempDir()
	for _, c := range cases {
		path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-")+".json")
		if err := os.WriteFile(path, []byte(c.profile), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Load(path)
		if err == nil {
			t.Errorf("%s: loaded, want an error", c.name)
			continue
		}
		msg := err.Error()
		for _, w := range append([]string{"load seccomp profile " + path + ": "}, c.want...) {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: error %q does not contain %q", c.name, msg, w)
			}
		}
		if errors.Is(err, ErrInvalidProfile) != c.invalid {
			t.Errorf("%s: errors.Is(%v, ErrInvalidProfile) = %v, want %v", c.name, err, !c.invalid, c.invalid)
		}
	}

	_, err := Load(filepath.Join(dir, "missing.json"))
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "missing.json") {
		t.Errorf("Load of a missing file = %v, want ErrNotExist naming the file", err)
	}
}

// TestLoadAccepts checks what Docker accepts and so must load: names this
// architecture lacks, the deprecated name field, comments, unknown keys.
func TestLoadAccepts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ok.json")
	profile := `{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1,"flags":["SECCOMP_FILTER_FLAG_LOG"],"x-vendor":1,
		"archMap":[{"architecture":"SCMP_ARCH_AARCH64","subArchitectures":["SCMP_ARCH_ARM"]}],
		"syscalls":[
			{"names":["arm_fadvise64_64","fstatat64","read","frobnicate"],"action":"SCMP_ACT_ALLOW","comment":"mixed"},
			{"name":"write","action":"SCMP_ACT_ERRNO","errnoRet":0},
			{"names":["uname"],"action":"SCMP_ACT_TRACE","errnoRet":5}
		]}`
	if err := os.WriteFile(path, []byte(profile), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Compile(p, nil); err != nil {
		t.Fatal(err)
	}
}

func TestParseRelease(t *testing.T) {
	for release, want := range map[string][2]uint64{
		"6.1.0-18-amd64": {6, 1}, "3.12-1-amd64": {3, 12}, "5.10.0": {5, 10}, "6.18.44-fc-v595": {6, 18},
	} {
		v, err := parseRelease(release)
		if err != nil || v.Kernel != want[0] || v.Major != want[1] {
			t.Errorf("parseRelease(%q) = %v, %v; want %d.%d", release, v, err, want[0], want[1])
		}
	}
	if _, err := parseRelease("linux"); err == nil {
		t.Error(`parseRelease("linux") succeeded`)
	}
}
