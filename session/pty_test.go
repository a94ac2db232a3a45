package session

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestPtyShell runs a shell on a pty of the jail's own: it is a terminal
// there, its exit status comes back, and the caller's terminal (a pty of
// the host's here) relays both ways.
func TestPtyShell(t *testing.T) {
	spec, runDir := testJail(t, "pty")
	st, err := Begin(spec)
	if err != nil {
		t.Fatal(err)
	}
	defer End(runDir, st.ID)
	hostMaster, hostSlave, err := openPty()
	if err != nil {
		t.Fatal(err)
	}
	defer hostMaster.Close()
	defer hostSlave.Close()
	var (
		mu  sync.Mutex
		out bytes.Buffer
	)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := hostMaster.Read(buf)
			mu.Lock()
			out.Write(buf[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	hostMaster.Write([]byte("tty; echo marker-$((6*7)); exit 5\n"))
	code, err := Run(st, RunOptions{Argv: []string{"/bin/sh"}, Env: []string{"PATH=/usr/bin:/bin"}, Stdin: hostSlave, Stdout: hostSlave, Stderr: hostSlave, Pty: true})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if code != 5 {
		t.Errorf("exit status = %d, want 5", code)
	}
	mu.Lock()
	text := out.String()
	mu.Unlock()
	if !strings.Contains(text, "/dev/pts/0") || !strings.Contains(text, "marker-42") {
		t.Errorf("terminal output = %q; want the jail's /dev/pts/0 and marker-42", text)
	}
}
