package metadata

import (
	"errors"
	"fmt"
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

// TestStateStore: the runtime-state store keeps what it was given across a
// reopen in the same boot, and drops the files of other boots (their
// records describe namespaces and links that a reboot removed).
func TestStateStore(t *testing.T) {
	dir := t.TempDir()
	other := filepath.Join(dir, stateFile("00000000-0000-0000-0000-000000000000"))
	if err := os.WriteFile(other, []byte("torn by a power loss"), 0o600); err != nil {
		t.Fatal(err)
	}
	unrelated := filepath.Join(dir, "meta.db")
	if err := os.WriteFile(unrelated, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := OpenState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := Put(db, "b", "k", &rec{Name: "v"}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := os.Stat(other); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("another boot's state file is still there: %v", err)
	}
	if _, err := os.Stat(unrelated); err != nil {
		t.Fatalf("a file that is not a state store was touched: %v", err)
	}
	db, err = OpenState(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got, err := Get[rec](db, "b", "k"); err != nil || got.Name != "v" {
		t.Fatalf("after reopen: %v, %v", got, err)
	}
}

// TestStateStoreSurvivesKill: commits without fsync lose nothing when the
// process dies (kill -9 while it commits): each commit that returned is
// there afterwards, and the file opens.
func TestStateStoreSurvivesKill(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestStateStoreChild$", "-test.v")
	cmd.Env = append(os.Environ(), "BERTH_STATE_CHILD="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The child prints each key after its commit returned.
	buf := make([]byte, 0, 1<<16)
	for !strings.Contains(string(buf), "k200\n") {
		b := make([]byte, 4096)
		n, err := out.Read(b)
		if err != nil {
			t.Fatalf("child: %v\n%s", err, buf)
		}
		buf = append(buf, b[:n]...)
	}
	cmd.Process.Kill()
	cmd.Wait()
	db, err := OpenState(dir)
	if err != nil {
		t.Fatalf("after kill -9: %v", err)
	}
	defer db.Close()
	for _, line := range strings.Split(string(buf), "\n") {
		if !strings.HasPrefix(line, "k") {
			continue
		}
		if _, err := Get[rec](db, "b", line); err != nil {
			t.Fatalf("committed %s lost: %v", line, err)
		}
	}
}

func TestStateStoreChild(t *testing.T) {
	dir := os.Getenv("BERTH_STATE_CHILD")
	if dir == "" {
		t.Skip("helper for TestStateStoreSurvivesKill")
	}
	db, err := OpenState(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		k := fmt.Sprintf("k%d", i)
		if err := Put(db, "b", k, &rec{Name: k, Tags: []string{strings.Repeat("x", 500)}}); err != nil {
			t.Fatal(err)
		}
		fmt.Println(k)
	}
}
