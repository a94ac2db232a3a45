package main

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// hasInterpreter agrees with debug/elf on a static and a dynamic binary.
func TestHasInterpreter(t *testing.T) {
	var files []string
	for _, p := range []string{"/bin/sh", "/usr/bin/env"} {
		if _, err := os.Stat(p); err == nil {
			files = append(files, p)
		}
	}
	go_ := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(go_); err == nil {
		out := filepath.Join(t.TempDir(), "static")
		src := filepath.Join(t.TempDir(), "main.go")
		os.WriteFile(src, []byte("package main\nfunc main() {}\n"), 0o644)
		cmd := exec.Command(go_, "build", "-o", out, src)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build a static binary: %v\n%s", err, b)
		}
		files = append(files, out)
	}
	if len(files) < 2 {
		t.Fatal("no binaries to compare with")
	}
	for _, p := range files {
		ef, err := elf.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		want := false
		for _, ph := range ef.Progs {
			want = want || ph.Type == elf.PT_INTERP
		}
		ef.Close()
		f, _ := os.Open(p)
		got, err := hasInterpreter(f)
		f.Close()
		if err != nil || got != want {
			t.Errorf("hasInterpreter(%s) = %v, %v; debug/elf says %v", p, got, err, want)
		}
	}
	if _, err := hasInterpreter(strings.NewReader("#!/bin/sh\n")); err == nil {
		t.Error("a script passed as ELF")
	}
}
