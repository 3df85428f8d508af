package dockerapi

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berth/berth/internal/build"
)

// recordingBuilder is a BuildBackend that records what it was asked and
// answers with a fixed result or error: the handler's own logic is what
// these tests check (query parsing, the JSON stream), not building.
type recordingBuilder struct {
	opts    build.Options
	context string
	err     error
}

func (b *recordingBuilder) Build(ctx context.Context, r io.Reader, opts build.Options, out io.Writer) (*build.Result, error) {
	data, _ := io.ReadAll(r)
	b.context, b.opts = string(data), opts
	io.WriteString(out, "Step 1/1 : FROM busybox\n")
	if b.err != nil {
		return nil, b.err
	}
	return &build.Result{ID: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", Tags: opts.Tags}, nil
}

func postBuildReq(t *testing.T, b *recordingBuilder, q url.Values) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	New(Config{Builder: b}).ServeHTTP(rec, httptest.NewRequest("POST", "/v1.41/build?"+q.Encode(), strings.NewReader("tar")))
	return rec.Code, rec.Body.String()
}

func TestPostBuild(t *testing.T) {
	b := &recordingBuilder{}
	code, body := postBuildReq(t, b, url.Values{
		"t": {"a", "b:v"}, "dockerfile": {"sub/Df"}, "target": {"s"}, "nocache": {"1"}, "pull": {"true"},
		"buildargs": {`{"X":"1","Y":null}`}, "labels": {`{"l":"v"}`}, "platform": {"linux/amd64"}, "networkmode": {"none"},
	})
	if code != 200 {
		t.Fatalf("status %d: %s", code, body)
	}
	one := "1"
	want := build.Options{
		Dockerfile: "sub/Df", Tags: []string{"a", "b:v"}, Target: "s", NoCache: true, Pull: true,
		BuildArgs: map[string]*string{"X": &one, "Y": nil}, Labels: map[string]string{"l": "v"}, Platform: "linux/amd64", Network: "none",
	}
	if diff := cmp.Diff(want, b.opts); diff != "" {
		t.Errorf("options (-want +got):\n%s", diff)
	}
	if b.context != "tar" {
		t.Errorf("context = %q", b.context)
	}
	for _, line := range []string{
		`{"stream":"Step 1/1 : FROM busybox\n"}`,
		`{"aux":{"ID":"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}}`,
		`{"stream":"Successfully built 0123456789ab\n"}`,
		`{"stream":"Successfully tagged a:latest\n"}`,
		`{"stream":"Successfully tagged b:v\n"}`,
	} {
		if !strings.Contains(body, line) {
			t.Errorf("stream lacks %s:\n%s", line, body)
		}
	}
}

func TestPostBuildQuietAndErrors(t *testing.T) {
	b := &recordingBuilder{}
	_, body := postBuildReq(t, b, url.Values{"q": {"1"}})
	if strings.Contains(body, "Step 1") || !strings.Contains(body, `{"stream":"sha256:0123`) {
		t.Errorf("q=1 stream:\n%s", body)
	}
	b.err = errors.New("The command '/bin/sh -c false' returned a non-zero code: 1")
	code, body := postBuildReq(t, b, url.Values{})
	if code != 200 || !strings.Contains(body, `"errorDetail":{"message":"The command '/bin/sh -c false' returned a non-zero code: 1"}`) {
		t.Errorf("failed build: %d\n%s", code, body)
	}
	for name, q := range map[string]url.Values{
		"buildkit":  {"version": {"2"}},
		"remote":    {"remote": {"https://example.com/x.git"}},
		"buildargs": {"buildargs": {"{"}},
		"labels":    {"labels": {"[1]"}},
		"platform":  {"platform": {"not/a/valid/platform/x"}},
	} {
		if code, body := postBuildReq(t, &recordingBuilder{}, q); code < 400 {
			t.Errorf("%s: status %d: %s", name, code, body)
		}
	}
}
