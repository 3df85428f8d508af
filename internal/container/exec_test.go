package container

import (
	"errors"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/spec"
)

func TestMergeEnv(t *testing.T) {
	for _, tc := range []struct {
		name             string
		base, over, want []string
	}{
		{"append", []string{"PATH=/bin"}, []string{"A=1"}, []string{"PATH=/bin", "A=1"}},
		{"replace in place", []string{"A=1", "PATH=/bin"}, []string{"A=2"}, []string{"A=2", "PATH=/bin"}},
		{"empty value", []string{"A=1"}, []string{"A="}, []string{"A="}},
		{"nothing", []string{"A=1"}, nil, []string{"A=1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := mergeEnv(tc.base, tc.over); !slices.Equal(got, tc.want) {
				t.Errorf("mergeEnv(%q, %q) = %q, want %q", tc.base, tc.over, got, tc.want)
			}
		})
	}
}

func TestResolveExecUser(t *testing.T) {
	db := spec.MapUserDB{
		UserList:  []spec.User{{Name: "root", UID: 0, GID: 0}, {Name: "nobody", UID: 65534, GID: 65534}, {Name: "app", UID: 1000, GID: 100}},
		GroupList: []spec.Group{{Name: "users", GID: 100}, {Name: "wheel", GID: 10}},
	}
	for _, tc := range []struct {
		arg     string
		want    specs.User
		wantErr *errdefs.Class
	}{
		{"app", specs.User{UID: 1000, GID: 100}, nil},
		{"1000", specs.User{UID: 1000, GID: 100}, nil},
		{"4242", specs.User{UID: 4242}, nil}, // a uid without a passwd entry, as Docker allows
		{"app:wheel", specs.User{UID: 1000, GID: 10}, nil},
		{"nobody:7", specs.User{UID: 65534, GID: 7}, nil},
		{"ghost", specs.User{}, errdefs.ErrInvalid},
		{"app:ghosts", specs.User{}, errdefs.ErrInvalid},
	} {
		t.Run(tc.arg, func(t *testing.T) {
			got, err := resolveExecUser(db, tc.arg)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil || got.UID != tc.want.UID || got.GID != tc.want.GID {
				t.Errorf("resolveExecUser(%q) = %+v, %v; want %+v", tc.arg, got, err, tc.want)
			}
		})
	}
}
