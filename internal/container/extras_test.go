package container

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/moby/moby/api/types/container"
)

func TestApplyChanges(t *testing.T) {
	tests := []struct {
		changes []string
		want    container.Config
		wantErr bool
	}{
		{changes: []string{`CMD ["cat", "/x"]`}, want: container.Config{Cmd: []string{"cat", "/x"}}},
		{changes: []string{`CMD echo hi`}, want: container.Config{Cmd: []string{"/bin/sh", "-c", "echo hi"}}},
		{changes: []string{`ENTRYPOINT ["/bin/app"]`, "USER nobody", "WORKDIR /srv", "WORKDIR data"},
			want: container.Config{Entrypoint: []string{"/bin/app"}, User: "nobody", WorkingDir: "/srv/data"}},
		{changes: []string{`ENV A=1 B="two words"`, "ENV A 3"}, want: container.Config{Env: []string{"B=two words", "A=3"}}},
		{changes: []string{`LABEL a=b "c d"=e`}, want: container.Config{Labels: map[string]string{"a": "b", "c d": "e"}}},
		{changes: []string{`VOLUME ["/v1", "/v2"]`}, want: container.Config{Volumes: map[string]struct{}{"/v1": {}, "/v2": {}}}},
		{changes: []string{"STOPSIGNAL SIGINT"}, want: container.Config{StopSignal: "SIGINT"}},
		{changes: []string{"STOPSIGNAL NOPE"}, wantErr: true},
		{changes: []string{"RUN rm -rf /"}, wantErr: true},
		{changes: []string{"LABEL novalue"}, wantErr: true},
		{changes: []string{`ENV A="unterminated`}, wantErr: true},
	}
	for _, tt := range tests {
		var got container.Config
		err := ApplyChanges(&got, tt.changes)
		if (err != nil) != tt.wantErr {
			t.Errorf("%q: err = %v", tt.changes, err)
			continue
		}
		if err == nil {
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("%q: (-want +got)\n%s", tt.changes, d)
			}
		}
	}
}

func TestMergeConfig(t *testing.T) {
	user := &container.Config{Env: []string{"A=user"}, Cmd: []string{"run"}}
	base := &container.Config{Env: []string{"A=base", "PATH=/bin"}, Entrypoint: []string{"/init"}, Cmd: []string{"default"}, WorkingDir: "/w", Labels: map[string]string{"l": "1"}}
	mergeConfig(user, base)
	want := &container.Config{Env: []string{"A=user", "PATH=/bin"}, Entrypoint: []string{"/init"}, Cmd: []string{"run"}, WorkingDir: "/w", Labels: map[string]string{"l": "1"}}
	if d := cmp.Diff(want, user); d != "" {
		t.Fatalf("(-want +got)\n%s", d)
	}
	// A container's own entrypoint drops the image's cmd (Docker's rule).
	user = &container.Config{Entrypoint: []string{"/mine"}}
	mergeConfig(user, base)
	if user.Cmd != nil {
		t.Fatalf("cmd = %q, want none", user.Cmd)
	}
}

func TestParsePS(t *testing.T) {
	out := "UID          PID    PPID  C STIME TTY          TIME CMD\n" +
		"root           1       0  0 10:00 ?        00:00:01 /sbin/init splash\n" +
		"root         100       1  0 10:00 ?        00:00:00 sleep 300\n" +
		"root         200       1  0 10:00 ?        00:00:00 sh -c echo hi\n"
	got, err := parsePS(out, []int{100, 200})
	if err != nil {
		t.Fatal(err)
	}
	want := container.TopResponse{
		Titles:    []string{"UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"},
		Processes: [][]string{{"root", "100", "1", "0", "10:00", "?", "00:00:00", "sleep 300"}, {"root", "200", "1", "0", "10:00", "?", "00:00:00", "sh -c echo hi"}},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("(-want +got)\n%s", d)
	}
	if _, err := parsePS("USER COMMAND\nroot x\n", nil); err == nil {
		t.Fatal("no PID column: want an error")
	}
}

func TestMergeUpdate(t *testing.T) {
	pids := int64(50)
	tests := []struct {
		name    string
		cur     container.Resources
		u       container.UpdateConfig
		want    container.Resources
		wantErr string
	}{
		{name: "memory and cpus", u: container.UpdateConfig{Resources: container.Resources{Memory: 64 << 20, NanoCPUs: 5e8, PidsLimit: &pids}},
			want: container.Resources{Memory: 64 << 20, NanoCPUs: 5e8, PidsLimit: &pids}},
		{name: "memory above swap", cur: container.Resources{Memory: 32 << 20, MemorySwap: 64 << 20}, u: container.UpdateConfig{Resources: container.Resources{Memory: 128 << 20}},
			wantErr: "memoryswap"},
		{name: "swap below memory", u: container.UpdateConfig{Resources: container.Resources{Memory: 64 << 20, MemorySwap: 32 << 20}}, wantErr: "larger than memory"},
		{name: "too little memory", u: container.UpdateConfig{Resources: container.Resources{Memory: 1 << 20}}, wantErr: "6MB"},
		{name: "quota replaces cpus", cur: container.Resources{NanoCPUs: 1e9}, u: container.UpdateConfig{Resources: container.Resources{CPUQuota: 50000}},
			want: container.Resources{CPUQuota: 50000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hc := &container.HostConfig{Resources: tt.cur}
			err := mergeUpdate(hc, tt.u)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, hc.Resources); d != "" {
				t.Fatalf("(-want +got)\n%s", d)
			}
		})
	}
}

func TestHideInitPaths(t *testing.T) {
	in := []container.FilesystemChange{
		{Path: "/etc", Kind: container.ChangeModify}, {Path: "/etc/hostname", Kind: container.ChangeAdd},
		{Path: "/etc/hosts", Kind: container.ChangeAdd}, {Path: "/tmp", Kind: container.ChangeModify},
		{Path: "/tmp/x", Kind: container.ChangeAdd}, {Path: "/proc", Kind: container.ChangeAdd},
	}
	want := []container.FilesystemChange{{Path: "/tmp", Kind: container.ChangeModify}, {Path: "/tmp/x", Kind: container.ChangeAdd}}
	if d := cmp.Diff(want, hideInitPaths(in)); d != "" {
		t.Fatalf("(-want +got)\n%s", d)
	}
}

func TestEntryName(t *testing.T) {
	for p, want := range map[string]string{"/tmp": "tmp", "/tmp/": "tmp", "/tmp/.": ".", "tmp/x": "x", "/": "/", ".": ".", "/a/../b": "b"} {
		clean, _ := cleanContainerPath(p)
		if got := entryName(p, clean); got != want {
			t.Errorf("entryName(%q) = %q, want %q", p, got, want)
		}
	}
}
