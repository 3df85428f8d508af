package runtimecli

import (
	"encoding/json"
	"testing"

	"github.com/berth/berth/internal/cgroup"
)

func TestToRuncStatsShape(t *testing.T) {
	s := &cgroup.Stats{
		CPU:    cgroup.CPUStats{Usage: 10, User: 4, System: 6},
		Memory: cgroup.MemoryStats{Usage: 100, Limit: 200, Stat: map[string]uint64{"rss": 7}},
		Pids:   cgroup.PidsStats{Current: 2, Limit: 17},
		IO:     []cgroup.IOStat{{Major: 8, Minor: 0, Op: "Read", Bytes: 512, IOs: 1}},
	}
	b, err := json.Marshal(event{Type: "stats", ID: "c", Data: toRuncStats(s)})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"type":"stats","id":"c","data":{"cpu":{"usage":{"total":10,"kernel":6,"user":4},"throttling":{}},` +
		`"memory":{"usage":{"limit":200,"usage":100,"failcnt":0},"raw":{"rss":7}},"pids":{"current":2,"limit":17},` +
		`"blkio":{"ioServiceBytesRecursive":[{"major":8,"op":"Read","value":512}],"ioServicedRecursive":[{"major":8,"op":"Read","value":1}]}}}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
}
