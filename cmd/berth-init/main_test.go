package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestInitStaysSmall: the init is exec'd once per container, and every
// package it links costs its start (docs/decisions/0090). These must stay
// out.
func TestInitStaysSmall(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	cmd := exec.Command("go", "list", "-deps", ".")
	cmd.Env = append(cmd.Environ(), "CGO_ENABLED=0")
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	deps := strings.Fields(string(out))
	for _, banned := range []string{"net/http", "regexp", "runtime/cgo", "github.com/seccomp/libseccomp-golang"} {
		if slices.Contains(deps, banned) {
			t.Errorf("the init links %s", banned)
		}
	}
}
