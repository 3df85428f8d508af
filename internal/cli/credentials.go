package cli

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/moby/moby/api/types/registry"
)

// Credentials in docker's config.json come from one of two places: a
// credential helper (credHelpers[server], else credsStore), a program
// docker-credential-<name> spoken to over stdin/stdout, or the base64
// "auths" entries. The helper protocol, as docker's:
//
//	berth                         docker-credential-<name>
//	  get    stdin: server URL  →  stdout: {"ServerURL","Username","Secret"}
//	                               (exit 1, "credentials not found..." if none)
//	  store  stdin: {"ServerURL","Username","Secret"}  →  (nothing)
//	  erase  stdin: server URL  →  (nothing)
//
// Username "<token>" means Secret is an identity token.

// dockerConfig is the part of config.json credentials need.
type dockerConfig struct {
	Auths       map[string]struct{ Auth string } `json:"auths"`
	CredsStore  string                           `json:"credsStore"`
	CredHelpers map[string]string                `json:"credHelpers"`
}

func readDockerConfig() (dockerConfig, error) {
	var cfg dockerConfig
	path := dockerConfigPath()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return cfg, err
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return cfg, fmt.Errorf("parse %s: %w", path, err)
	}
	return cfg, nil
}

// helperFor is the credential helper for server ("" for none).
func (cfg dockerConfig) helperFor(server string) string {
	if h := cfg.CredHelpers[server]; h != "" {
		return h
	}
	return cfg.CredsStore
}

// helperMessage is what helpers print when they have no credentials.
const helperNotFound = "credentials not found in native keychain"

// runHelper runs docker-credential-<name> <action> with stdin and returns
// its standard output.
func runHelper(name, action string, stdin []byte) ([]byte, error) {
	prog := "docker-credential-" + name
	cmd := exec.Command(prog, action)
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stdout.String() + " " + stderr.String())
		if strings.Contains(msg, helperNotFound) {
			return nil, errCredentialsNotFound
		}
		return nil, fmt.Errorf("credential helper %s %s: %w: %s", prog, action, err, msg)
	}
	return stdout.Bytes(), nil
}

var errCredentialsNotFound = errors.New(helperNotFound)

// helperCreds is the helper protocol's credentials message.
type helperCreds struct {
	ServerURL string
	Username  string
	Secret    string
}

// credentialsFor returns the user name and password (or "<token>" and an
// identity token) config.json keeps for server; empty for none.
func credentialsFor(server string) (user, secret string, err error) {
	cfg, err := readDockerConfig()
	if err != nil {
		return "", "", err
	}
	if h := cfg.helperFor(server); h != "" {
		out, err := runHelper(h, "get", []byte(server))
		if errors.Is(err, errCredentialsNotFound) {
			return "", "", nil
		}
		if err != nil {
			return "", "", err
		}
		var c helperCreds
		if err := json.Unmarshal(out, &c); err != nil {
			return "", "", fmt.Errorf("credential helper docker-credential-%s get: bad answer: %w", h, err)
		}
		return c.Username, c.Secret, nil
	}
	a, ok := cfg.Auths[server]
	if !ok || a.Auth == "" {
		return "", "", nil
	}
	raw, err := base64.StdEncoding.DecodeString(a.Auth)
	if err != nil {
		return "", "", fmt.Errorf("%s: auth of %s is not base64: %w", dockerConfigPath(), server, err)
	}
	user, secret, _ = strings.Cut(string(raw), ":")
	return user, secret, nil
}

// storeCredentials saves credentials for server: in its helper, if it has
// one (with an empty "auths" entry, as docker writes), else in "auths".
func storeCredentials(server, user, secret string) error {
	cfg, err := readDockerConfig()
	if err != nil {
		return err
	}
	if h := cfg.helperFor(server); h != "" {
		b, _ := json.Marshal(helperCreds{ServerURL: server, Username: user, Secret: secret})
		if _, err := runHelper(h, "store", b); err != nil {
			return err
		}
		return editAuths(func(a map[string]any) { a[server] = map[string]any{} })
	}
	return editAuths(func(a map[string]any) {
		a[server] = map[string]any{"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + secret))}
	})
}

// eraseCredentials forgets server's credentials, in its helper too.
func eraseCredentials(server string) error {
	cfg, err := readDockerConfig()
	if err != nil {
		return err
	}
	if h := cfg.helperFor(server); h != "" {
		if _, err := runHelper(h, "erase", []byte(server)); err != nil && !errors.Is(err, errCredentialsNotFound) {
			return err
		}
	}
	return editAuths(func(a map[string]any) { delete(a, server) })
}

// encodeAuth encodes credentials for X-Registry-Auth ("" for none).
func encodeAuth(user, secret string) string {
	switch user {
	case "":
		return ""
	case "<token>":
		b, _ := json.Marshal(registry.AuthConfig{IdentityToken: secret})
		return base64.URLEncoding.EncodeToString(b)
	}
	b, _ := json.Marshal(registry.AuthConfig{Username: user, Password: secret})
	return base64.URLEncoding.EncodeToString(b)
}
