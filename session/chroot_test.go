package session

import (
	"strings"
	"testing"
)

// SuppressSync answers sync calls with success and nothing done, and
// leaves no_new_privs alone; without it they reach the kernel.
func TestSuppressSync(t *testing.T) {
	root := jailRoot(t)
	for _, suppress := range []bool{false, true} {
		cmd, err := Chroot(root, "/probe")
		if err != nil {
			t.Fatal(err)
		}
		if suppress {
			SuppressSync(cmd)
		}
		cmd.Env = []string{probeEnv + "=sync"}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("probe: %v\n%s", err, out)
		}
		want := "fsync=bad file descriptor\nno_new_privs=0\n"
		if suppress {
			want = "fsync=ok\nno_new_privs=0\n"
		}
		if got := string(out); !strings.HasSuffix(got, want) {
			t.Errorf("suppress=%v: probe says %q, want %q", suppress, got, want)
		}
	}
}
