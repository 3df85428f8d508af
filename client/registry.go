package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/api/types/registry"
)

// RegistryAuth encodes credentials for X-Registry-Auth (empty user:
// anonymous).
func RegistryAuth(user, password string) string {
	if user == "" {
		return ""
	}
	b, _ := json.Marshal(registry.AuthConfig{Username: user, Password: password})
	return base64.URLEncoding.EncodeToString(b)
}

// ImagePull pulls ref ("busybox", "host:5000/x/y:tag"), calling onLine
// with each progress line ("<layer>: Pull complete"); an error the daemon
// reports in the stream is returned.
func (c *Client) ImagePull(ctx context.Context, ref, platform, auth string, onLine func(string)) error {
	name, tag := splitTag(ref)
	q := url.Values{"fromImage": {name}}
	if tag != "" {
		q.Set("tag", tag)
	}
	if platform != "" {
		q.Set("platform", platform)
	}
	return c.progressPost(ctx, "/images/create", q, auth, onLine)
}

// ImagePush pushes ref to its registry.
func (c *Client) ImagePush(ctx context.Context, ref, auth string, onLine func(string)) error {
	name, tag := splitTag(ref)
	q := url.Values{}
	if tag != "" {
		q.Set("tag", tag)
	}
	return c.progressPost(ctx, "/images/"+name+"/push", q, auth, onLine)
}

// splitTag splits "name:tag" (not a registry port) and "name@digest".
func splitTag(ref string) (string, string) {
	if i := strings.LastIndex(ref, "@"); i >= 0 {
		return ref[:i], ref[i+1:]
	}
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		return ref[:i], ref[i+1:]
	}
	return ref, ""
}

func (c *Client) progressPost(ctx context.Context, path string, q url.Values, auth string, onLine func(string)) error {
	v, err := c.APIVersion(ctx)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/v"+v+path+"?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	if auth != "" {
		req.Header.Set("X-Registry-Auth", auth)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return c.connectError(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return responseError(resp)
	}
	dec := json.NewDecoder(resp.Body)
	for {
		var m struct {
			jsonstream.Message
			ErrorText string `json:"error"`
		}
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("read progress: %w", err)
		}
		switch {
		case m.Error != nil:
			return errors.New(m.Error.Message)
		case m.ErrorText != "":
			return errors.New(m.ErrorText)
		case m.Progress != nil && m.Progress.Total > 0:
			// byte counts: a terminal UI would draw bars; lines skip them
		case m.Status != "" && onLine != nil:
			if m.ID != "" {
				onLine(m.ID + ": " + m.Status)
			} else {
				onLine(m.Status)
			}
		}
	}
}

// ImageList lists the images.
func (c *Client) ImageList(ctx context.Context) ([]image.Summary, error) {
	var out []image.Summary
	return out, c.getJSON(ctx, "/images/json", nil, &out)
}

// ImageTag names an image.
func (c *Client) ImageTag(ctx context.Context, source, target string) error {
	name, tag := splitTag(target)
	q := url.Values{"repo": {name}}
	if tag != "" {
		q.Set("tag", tag)
	}
	return c.discard(c.do(ctx, http.MethodPost, "/images/"+source+"/tag", q, nil, true))
}

// ImageRemove removes an image name (or the image, with force).
func (c *Client) ImageRemove(ctx context.Context, ref string, force bool) ([]image.DeleteResponse, error) {
	q := url.Values{}
	if force {
		q.Set("force", "1")
	}
	resp, err := c.do(ctx, http.MethodDelete, "/images/"+ref, q, nil, true)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out []image.DeleteResponse
	return out, json.NewDecoder(resp.Body).Decode(&out)
}

// ImageSave streams a docker-archive of the images; the caller closes it.
func (c *Client) ImageSave(ctx context.Context, refs []string) (io.ReadCloser, error) {
	resp, err := c.do(ctx, http.MethodGet, "/images/get", url.Values{"names": refs}, nil, true)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// RegistryLogin asks the daemon to check user and password against server
// (POST /auth); an error means the registry refused them.
func (c *Client) RegistryLogin(ctx context.Context, server, user, password string) error {
	resp, err := c.do(ctx, http.MethodPost, "/auth", nil, map[string]string{
		"username": user, "password": password, "serveraddress": server,
	}, true)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}
