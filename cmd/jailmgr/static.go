package main

import (
	"debug/elf"
	"fmt"
	"os"
)

// ensureStatic refuses to open sessions from a dynamically linked jailmgr:
// the session init runs this binary again inside the jail, where the host's
// dynamic loader and libc are not (or not in the same version).
func ensureStatic() error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own executable: %w", err)
	}
	f, err := elf.Open(self)
	if err != nil {
		return fmt.Errorf("read own executable: %w", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("this jailmgr is dynamically linked, but sessions run it inside jails: build it with 'make build' (CGO_ENABLED=0)")
		}
	}
	return nil
}
