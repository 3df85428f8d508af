package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth/berth/internal/errdefs"
)

// ValidatePath checks a linux.cgroupsPath before New: the systemd form
// ("slice:prefix:name") needs a systemd driver berth does not have.
func ValidatePath(path string) error {
	if !strings.HasPrefix(path, "/") && strings.Count(path, ":") == 2 {
		return errdefs.NotImplemented(fmt.Errorf("linux.cgroupsPath %q: the systemd cgroup driver (slice:prefix:name) is not implemented; use a path like /berth/<id>", path))
	}
	return nil
}

// isPageSize reports whether s is a hugepage size in the kernel's form
// ("64KB", "2MB", "1GB"): hugepage sizes become file names, so nothing else
// may pass.
func isPageSize(s string) bool {
	n := len(s)
	if n < 3 || s[0] < '1' || s[0] > '9' || s[n-1] != 'B' || !strings.ContainsRune("KMGTP", rune(s[n-2])) {
		return false
	}
	for _, c := range s[1 : n-2] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// the cgroup core files a spec must not write through linux.resources.unified:
// they move, freeze or kill processes or reshape the tree.
var forbiddenUnified = map[string]bool{
	"cgroup.procs": true, "cgroup.threads": true, "cgroup.subtree_control": true,
	"cgroup.freeze": true, "cgroup.kill": true, "cgroup.type": true,
}

// ValidateResources checks r for the host's mode before any write, with
// errors that name the field. Beyond the value ranges the kernel would
// refuse less clearly, it stops spec values from becoming file names that
// leave the cgroup directory (hugepage sizes, unified keys).
func ValidateResources(r *specs.LinuxResources, mode ModeKind) error {
	if r == nil {
		return nil
	}
	const f = "linux.resources"
	for i, h := range r.HugepageLimits {
		if !isPageSize(h.Pagesize) {
			return errdefs.Invalidf("%s.hugepageLimits[%d].pageSize: %q is not a page size like 2MB or 1GB", f, i, h.Pagesize)
		}
	}
	if len(r.Unified) > 0 && mode != Unified {
		return errdefs.Invalidf("%s.unified: needs a cgroup v2 host (this one is %v)", f, mode)
	}
	for k := range r.Unified {
		if k == "" || strings.ContainsAny(k, "/\x00") || strings.HasPrefix(k, ".") || !strings.Contains(k, ".") {
			return errdefs.Invalidf("%s.unified: %q is not a cgroup file name", f, k)
		}
		if forbiddenUnified[k] {
			return errdefs.Invalidf("%s.unified: %q may not be written by a spec", f, k)
		}
	}
	if m := r.Memory; m != nil {
		for _, v := range []struct {
			name string
			val  *int64
		}{{"limit", m.Limit}, {"reservation", m.Reservation}, {"swap", m.Swap}, {"kernelTCP", m.KernelTCP}} {
			if v.val != nil && *v.val < -1 {
				return errdefs.Invalidf("%s.memory.%s: %d (use -1 for no limit)", f, v.name, *v.val)
			}
		}
		if m.Swappiness != nil && *m.Swappiness > 100 {
			return errdefs.Invalidf("%s.memory.swappiness: %d is not in 0-100", f, *m.Swappiness)
		}
		if m.Limit != nil && m.Swap != nil && *m.Limit > 0 && *m.Swap > 0 && *m.Swap < *m.Limit {
			return errdefs.Invalidf("%s.memory.swap: %d is below memory.limit %d (swap is memory+swap)", f, *m.Swap, *m.Limit)
		}
	}
	if c := r.CPU; c != nil {
		if c.Quota != nil && *c.Quota < -1 {
			return errdefs.Invalidf("%s.cpu.quota: %d (use -1 for no quota)", f, *c.Quota)
		}
		if c.Quota != nil && *c.Quota > 0 && *c.Quota < 1000 {
			return errdefs.Invalidf("%s.cpu.quota: %d is below the kernel's minimum of 1000 µs", f, *c.Quota)
		}
		if c.Period != nil && *c.Period != 0 && (*c.Period < 1000 || *c.Period > 1000000) {
			return errdefs.Invalidf("%s.cpu.period: %d is not in 1000-1000000 µs", f, *c.Period)
		}
	}
	if b := r.BlockIO; b != nil {
		if b.Weight != nil && *b.Weight != 0 && (*b.Weight < 10 || *b.Weight > 1000) {
			return errdefs.Invalidf("%s.blockIO.weight: %d is not in 10-1000", f, *b.Weight)
		}
	}
	for i, d := range r.Devices {
		if _, err := deviceRule(d); err != nil {
			return errdefs.Invalidf("%s.devices[%d]: %w", f, i, err)
		}
	}
	return nil
}

// OrderMemoryV1 puts a v1 plan's memory.limit_in_bytes and
// memory.memsw.limit_in_bytes writes in the order the kernel accepts.
// memsw may never be below the memory limit, so when the new memsw is
// above the current limit (or unlimited) memsw goes first, otherwise the
// limit goes first (runc does the same). currentLimit is the cgroup's
// memory.limit_in_bytes now. Other writes keep their order.
func OrderMemoryV1(ws []Write, currentLimit uint64) []Write {
	li, si := -1, -1
	for i, w := range ws {
		switch {
		case w.Controller == "memory" && w.File == "memory.limit_in_bytes":
			li = i
		case w.Controller == "memory" && w.File == "memory.memsw.limit_in_bytes":
			si = i
		}
	}
	if li < 0 || si < 0 {
		return ws
	}
	swapFirst := ws[si].Value == "-1"
	if !swapFirst {
		var swap uint64
		if _, err := fmt.Sscan(ws[si].Value, &swap); err == nil {
			swapFirst = swap > currentLimit
		}
	}
	out := append([]Write(nil), ws...)
	lo, hi := min(li, si), max(li, si)
	if swapFirst {
		out[lo], out[hi] = ws[si], ws[li]
	} else {
		out[lo], out[hi] = ws[li], ws[si]
	}
	return out
}

// EnableControllers, on cgroup v2, enables in cgroup.subtree_control of
// every level from root down to dir's parent the controllers each level
// has, so that dir gets their files. A controller the kernel refuses to
// enable (for instance cpu with realtime tasks in the way) is skipped and
// named in the returned error, which callers may take as a warning:
// limits that need it then fail at Set, naming the file.
func EnableControllers(root, dir string) error {
	rel, err := filepath.Rel(root, dir)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return fmt.Errorf("cgroup: %s is not below %s", dir, root)
	}
	levels := []string{root}
	for _, part := range strings.Split(filepath.Dir(rel), string(filepath.Separator)) {
		if part != "." {
			levels = append(levels, filepath.Join(levels[len(levels)-1], part))
		}
	}
	var errs []error
	for _, cur := range levels {
		b, err := os.ReadFile(filepath.Join(cur, "cgroup.controllers"))
		if err != nil {
			return fmt.Errorf("cgroup: %w", err)
		}
		ctrls := strings.Fields(string(b))
		if len(ctrls) == 0 {
			continue
		}
		all := "+" + strings.Join(ctrls, " +")
		if err := writeFile(cur, "cgroup.subtree_control", all); err == nil {
			continue
		}
		for _, c := range ctrls { // one by one: keep what can be enabled
			if err := writeFile(cur, "cgroup.subtree_control", "+"+c); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("cgroup: some controllers could not be enabled: %w", errors.Join(errs...))
	}
	return nil
}
