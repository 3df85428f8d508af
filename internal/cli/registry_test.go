package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

func TestEditAuthsKeepsOtherKeys(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", dir)
	path := filepath.Join(dir, "config.json")
	if err := os.WriteFile(path, []byte(`{"detachKeys":"ctrl-x","auths":{"other:5000":{"auth":"YTpi"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := editAuths(func(a map[string]any) { a["localhost:5000"] = map[string]any{"auth": "dTpw"} }); err != nil {
		t.Fatal(err)
	}
	if got, err := registryAuthFor("localhost:5000/busybox"); got == "" || err != nil {
		t.Fatal("login's entry not found by registryAuthFor")
	}
	if err := editAuths(func(a map[string]any) { delete(a, "localhost:5000") }); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		DetachKeys string                    `json:"detachKeys"`
		Auths      map[string]map[string]any `json:"auths"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.DetachKeys != "ctrl-x" || len(cfg.Auths) != 1 || cfg.Auths["other:5000"] == nil {
		t.Fatalf("config after logout = %s", b)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("config mode: %v %v", fi.Mode(), err)
	}
}
