package session

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// probeOne runs the probe in a session of spec and returns its results.
func probeOne(t *testing.T, spec *Spec, runDir string) map[string]string {
	t.Helper()
	st, err := Begin(spec)
	if err != nil {
		t.Fatal(err)
	}
	defer End(runDir, st.ID)
	out, code := runIn(t, st, true, []string{probeEnv + "=1"}, "/probe")
	if code != 0 {
		t.Fatalf("probe exited %d:\n%s", code, out)
	}
	res := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		k, v, _ := strings.Cut(l, "=")
		res[k] = v
	}
	return res
}

func TestSeccompNoneKeepsCapabilitiesDropped(t *testing.T) {
	spec, runDir := testJail(t, "nosec")
	spec.Jail.Seccomp = "none"
	res := probeOne(t, spec, runDir)
	// Without the filter keyctl reaches the kernel (which answers with its
	// own error), but mount is still refused: CAP_SYS_ADMIN is gone.
	if res["keyctl"] == "EPERM" {
		t.Errorf("keyctl = EPERM with seccomp = none: the filter is still there")
	}
	if res["mount"] != "EPERM" || res["mknod-block"] != "EPERM" {
		t.Errorf("mount = %s, mknod-block = %s; want EPERM from the missing capabilities", res["mount"], res["mknod-block"])
	}
}

func TestSeccompJSONProfile(t *testing.T) {
	spec, runDir := testJail(t, "jsonsec")
	profile := filepath.Join(t.TempDir(), "profile.json")
	// Allow everything but uname, which fails with ENOSYS (38).
	data := `{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]}`
	if err := os.WriteFile(profile, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	spec.Jail.Seccomp = profile
	st, err := Begin(spec)
	if err != nil {
		t.Fatal(err)
	}
	defer End(runDir, st.ID)
	out, code := runIn(t, st, false, nil, "/bin/uname", "-s")
	if code == 0 || strings.Contains(out, "Linux") {
		t.Errorf("uname under a profile that denies it: exit %d, %q", code, out)
	}
	if out, code := runIn(t, st, false, nil, "/bin/echo", "ok"); code != 0 || out != "ok\n" {
		t.Errorf("echo under the profile: exit %d, %q", code, out)
	}
}
