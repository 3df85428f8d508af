package runtime_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth/berth/internal/testutil"
)

// TestUpdatePidsLimit: `update --pids-limit` changes a created container's
// pids cgroup limit, and `events --stats` reports it (runc and berth alike).
func TestUpdatePidsLimit(t *testing.T) {
	h := newHarness(t)
	if _, err := os.Stat("/sys/fs/cgroup/pids/cgroup.procs"); err != nil {
		t.Skip("needs the cgroup v1 pids hierarchy of this machine")
	}
	cg := "/berth-runtime-test/" + id(t)
	b := h.bundle(func(s *specs.Spec) { s.Linux.CgroupsPath = cg }, "sleep", "100")
	cid := id(t)
	h.create(b, cid).Close()
	h.must("update", "--pids-limit", "17", cid)
	got, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/pids", cg, "pids.max"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(got)) != "17" {
		t.Errorf("pids.max = %q, want 17", got)
	}
	var ev struct {
		Type string
		ID   string
		Data struct {
			Pids struct{ Current, Limit uint64 }
		}
	}
	out := h.must("events", "--stats", cid)
	if err := json.Unmarshal([]byte(out.stdout), &ev); err != nil {
		t.Fatalf("events --stats: %v\n%s", err, out.stdout)
	}
	if ev.Type != "stats" || ev.ID != cid || ev.Data.Pids.Current < 1 || ev.Data.Pids.Limit != 17 {
		t.Errorf("events --stats = %+v", ev)
	}
	h.must("delete", "--force", cid)
	testutil.RemoveCgroupParent("berth-runtime-test")
}
