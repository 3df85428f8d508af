package metadata

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/berth/berth/internal/errdefs"
)

type rec struct {
	Name  string
	Count int
	Tags  []string
}

func open(t *testing.T) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "meta.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

func TestRoundTrip(t *testing.T) {
	db, _ := open(t)
	want := &rec{Name: "a", Count: 3, Tags: []string{"x", "y"}}
	if err := Put(db, "things", "a", want); err != nil {
		t.Fatal(err)
	}
	if err := Put(db, "things", "b", &rec{Name: "b"}); err != nil {
		t.Fatal(err)
	}
	got, err := Get[rec](db, "things", "a")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("get (-want +got):\n%s", diff)
	}
	all, err := All[rec](db, "things")
	if err != nil || len(all) != 2 || all[0].Name != "a" || all[1].Name != "b" {
		t.Fatalf("All = %v, %v", all, err)
	}
	keys, _ := Keys(db, "things")
	if diff := cmp.Diff([]string{"a", "b"}, keys); diff != "" {
		t.Fatal(diff)
	}
	if _, err := Get[rec](db, "things", "missing"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("missing key: %v", err)
	}
	if _, err := Get[rec](db, "nobucket", "a"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("missing bucket: %v", err)
	}
	if all, err := All[rec](db, "nobucket"); err != nil || len(all) != 0 {
		t.Fatalf("All(nobucket) = %v, %v", all, err)
	}
	if err := Delete(db, "things", "a"); err != nil {
		t.Fatal(err)
	}
	if err := Delete(db, "things", "a"); err != nil {
		t.Fatalf("second delete: %v", err)
	}
	if err := Delete(db, "nobucket", "a"); err != nil {
		t.Fatalf("delete in missing bucket: %v", err)
	}
	if _, err := Get[rec](db, "things", "a"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	if err := Put(db, "things", "", &rec{}); !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("empty key: %v", err)
	}
}

func TestTransactionRollsBack(t *testing.T) {
	db, _ := open(t)
	if err := Put(db, "b", "keep", &rec{Name: "old"}); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := db.Update(func(tx *Tx) error {
		if err := PutTx(tx, "b", "keep", &rec{Name: "new"}); err != nil {
			return err
		}
		if err := PutTx(tx, "b", "other", &rec{Name: "other"}); err != nil {
			return err
		}
		if err := DeleteTx(tx, "b", "keep"); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v", err)
	}
	got, err := Get[rec](db, "b", "keep")
	if err != nil || got.Name != "old" {
		t.Fatalf("after rollback: %v, %v", got, err)
	}
	if _, err := Get[rec](db, "b", "other"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("rolled-back put visible: %v", err)
	}
	// A committed transaction sees its own writes.
	err = db.Update(func(tx *Tx) error {
		if err := PutTx(tx, "b", "x", &rec{Count: 1}); err != nil {
			return err
		}
		v, err := GetTx[rec](tx, "b", "x")
		if err != nil || v.Count != 1 {
			t.Errorf("read own write: %v %v", v, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestReopenKeepsData(t *testing.T) {
	db, path := open(t)
	if err := Put(db, "b", "k", &rec{Name: "v"}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	got, err := Get[rec](db2, "b", "k")
	if err != nil || got.Name != "v" {
		t.Fatalf("after reopen: %v, %v", got, err)
	}
}

// TestSecondOpenFailsFast opens the file from a child process (bbolt's flock
// is per open file description, so a second open in the same process would
// also block, but a separate process is what a second daemon is).
func TestSecondOpenFailsFast(t *testing.T) {
	_, path := open(t)
	start := time.Now()
	cmd := exec.Command(os.Args[0], "-test.run=^TestSecondOpenChild$", "-test.v")
	cmd.Env = append(os.Environ(), "BERTH_METADATA_CHILD="+path)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("second open took %v", d)
	}
	if !strings.Contains(string(out), "CONFLICT OK") {
		t.Fatalf("child output:\n%s", out)
	}
}

func TestSecondOpenChild(t *testing.T) {
	path := os.Getenv("BERTH_METADATA_CHILD")
	if path == "" {
		t.Skip("helper for TestSecondOpenFailsFast")
	}
	start := time.Now()
	db, err := Open(path)
	if err == nil {
		db.Close()
		t.Fatal("second open succeeded")
	}
	if !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second open error: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v", d)
	}
	t.Log("CONFLICT OK")
}
