package cli

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/spf13/cobra"

	"github.com/berth/berth/client"
	"github.com/berth/berth/internal/errdefs"
	"github.com/berth/berth/internal/layer"
)

// splitCpArg splits "container:path"; a local path has no colon before
// its first slash.
func splitCpArg(arg string) (ctr, p string) {
	if filepath.IsAbs(arg) || strings.HasPrefix(arg, ".") {
		return "", arg
	}
	ctr, p, ok := strings.Cut(arg, ":")
	if !ok {
		return "", arg
	}
	return ctr, p
}

func newCpCommand(c *CLI) *cobra.Command {
	var archive, follow, quiet bool
	cmd := &cobra.Command{
		Use:   "cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n  berth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
		Short: "Copy files/folders between a container and the local filesystem",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			srcC, src := splitCpArg(args[0])
			dstC, dst := splitCpArg(args[1])
			switch {
			case srcC != "" && dstC != "":
				return errdefs.Invalidf("copying between containers is not supported")
			case srcC != "":
				return c.copyFrom(cmd.Context(), cl, srcC, src, dst, follow)
			case dstC != "":
				return c.copyTo(cmd.Context(), cl, src, dstC, dst, archive)
			}
			return errdefs.Invalidf("must specify at least one container source")
		},
	}
	cmd.Flags().BoolVarP(&archive, "archive", "a", false, "archive mode (copy all uid/gid information)")
	cmd.Flags().BoolVarP(&follow, "follow-link", "L", false, "always follow symbol link in SRC_PATH")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "suppress progress output during copy")
	return cmd
}

func (c *CLI) copyFrom(ctx context.Context, cl *client.Client, ctr, src, dst string, follow bool) error {
	if src == "" {
		return errdefs.Invalidf("source path cannot be empty")
	}
	if follow {
		if st, err := cl.ContainerStatPath(ctx, ctr, src); err == nil && st.LinkTarget != "" {
			src = st.LinkTarget
		}
	}
	rc, st, err := cl.CopyFromContainer(ctx, ctr, src)
	if err != nil {
		return err
	}
	defer rc.Close()
	if dst == "-" {
		_, err := io.Copy(c.out, rc)
		return err
	}
	// The tar's top entry is named st.Name; rename it to where it goes.
	contents := strings.HasSuffix(src, "/.") && st.Mode.IsDir()
	into, rename := dst, ""
	if fi, err := os.Stat(dst); err == nil && fi.IsDir() && !contents {
		// into dst, keeping the name
	} else if err == nil && !fi.IsDir() && st.Mode.IsDir() {
		return errdefs.Invalidf("cannot copy a directory to a file: %s", dst)
	} else if err == nil && contents {
		rename = "."
	} else {
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if strings.HasSuffix(dst, string(filepath.Separator)) && !st.Mode.IsDir() {
			return errdefs.Invalidf("destination directory %s does not exist", dst)
		}
		into, rename = filepath.Dir(filepath.Clean(dst)), filepath.Base(filepath.Clean(dst))
	}
	r := io.Reader(rc)
	if rename != "" {
		r = rebaseTar(rc, st.Name, rename)
	}
	_, _, err = layer.Apply(ctx, into, r, layer.ApplyOptions{Whiteouts: layer.ApplyWhiteouts, NoChown: os.Geteuid() != 0})
	return err
}

// rebaseTar renames the top entry from (and everything below it) to.
func rebaseTar(r io.Reader, from, to string) io.Reader {
	if from == "/" {
		from = "" // entries "/", "/bin", ...
	}
	pr, pw := io.Pipe()
	go func() {
		tr, tw := tar.NewReader(r), tar.NewWriter(pw)
		for {
			hdr, err := tr.Next()
			if err == io.EOF {
				pw.CloseWithError(tw.Close())
				return
			}
			if err != nil {
				pw.CloseWithError(err)
				return
			}
			name := strings.TrimSuffix(hdr.Name, "/")
			if name == from {
				name = to
			} else if rest, ok := strings.CutPrefix(name, from+"/"); ok {
				name = path.Join(to, rest)
			}
			if hdr.Typeflag == tar.TypeDir {
				name += "/"
			}
			hdr.Name = name
			if hdr.Typeflag == tar.TypeLink {
				if rest, ok := strings.CutPrefix(hdr.Linkname, from+"/"); ok {
					hdr.Linkname = path.Join(to, rest)
				}
			}
			if err := tw.WriteHeader(hdr); err != nil {
				pw.CloseWithError(err)
				return
			}
			if _, err := io.Copy(tw, tr); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
	}()
	return pr
}

func (c *CLI) copyTo(ctx context.Context, cl *client.Client, src, ctr, dst string, archive bool) error {
	opts := client.CopyToContainerOptions{CopyUIDGID: archive}
	if src == "-" {
		return cl.CopyToContainer(ctx, ctr, dst, os.Stdin, opts)
	}
	fi, err := os.Lstat(src)
	if err != nil {
		return err
	}
	name := filepath.Base(filepath.Clean(src))
	contents := fi.IsDir() && (strings.HasSuffix(src, "/.") || strings.HasSuffix(src, "/"+"."))
	into := dst
	st, err := cl.ContainerStatPath(ctx, ctr, dst)
	switch {
	case err == nil && st.Mode.IsDir():
		if contents {
			name = "."
		}
	case err == nil:
		if fi.IsDir() {
			return errdefs.Invalidf("cannot copy a directory to a file: %s", dst)
		}
		into, name = path.Dir(path.Clean("/"+dst)), path.Base(dst)
	case errdefs.ClassOf(err) == errdefs.ErrNotFound:
		if strings.HasSuffix(dst, "/") && !fi.IsDir() {
			return errdefs.Invalidf("destination directory %s does not exist in the container", dst)
		}
		into, name = path.Dir(path.Clean("/"+dst)), path.Base(dst)
	default:
		return err
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(tarPath(pw, src, name)) }()
	err = cl.CopyToContainer(ctx, ctr, into, pr, opts)
	pr.Close()
	return err
}

// tarPath writes the local tree at src to w, its top entry named name.
func tarPath(w io.Writer, src, name string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		hdr.Name = path.Join(name, filepath.ToSlash(rel))
		if fi.IsDir() {
			hdr.Name += "/"
		}
		hdr.Format = tar.FormatPAX
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

func newCommitCommand(c *CLI) *cobra.Command {
	var author, message string
	var changes []string
	var pause bool
	cmd := &cobra.Command{
		Use:   "commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
		Short: "Create a new image from a container's changes",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			opts := client.CommitOptions{Author: author, Comment: message, Changes: changes, Pause: pause}
			if len(args) == 2 {
				opts.Reference = args[1]
			}
			id, err := cl.ContainerCommit(cmd.Context(), args[0], opts)
			if err != nil {
				return err
			}
			fmt.Fprintln(c.out, id)
			return nil
		},
	}
	cmd.Flags().StringVarP(&author, "author", "a", "", "author (e.g., \"John Hannibal Smith <hannibal@a-team.com>\")")
	cmd.Flags().StringVarP(&message, "message", "m", "", "commit message")
	stringArrayVarP(cmd.Flags(), &changes, "change", "c", nil, "apply Dockerfile instruction to the created image")
	cmd.Flags().BoolVarP(&pause, "pause", "p", true, "pause container during commit")
	return cmd
}

func newExportCommand(c *CLI) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "export [OPTIONS] CONTAINER",
		Short: "Export a container's filesystem as a tar archive",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			out := c.out
			if output == "" {
				if f, ok := out.(*os.File); ok && isTerminal(f) {
					return errdefs.Invalidf("cowardly refusing to save to a terminal. Use the -o flag or redirect")
				}
			}
			rc, err := cl.ContainerExport(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			defer rc.Close()
			if output != "" {
				f, err := os.OpenFile(output, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
				if err != nil {
					return err
				}
				defer f.Close()
				out = f
			}
			_, err = io.Copy(out, rc)
			return err
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to a file, instead of STDOUT")
	return cmd
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func newDiffCommand(c *CLI) *cobra.Command {
	return &cobra.Command{
		Use:   "diff CONTAINER",
		Short: "Inspect changes to files or directories on a container's filesystem",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			changes, err := cl.ContainerChanges(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			for _, ch := range changes {
				fmt.Fprintln(c.out, ch.Kind.String(), ch.Path)
			}
			return nil
		},
	}
}

// statsRow is one line of `stats`, with docker's template field names.
type statsRow struct {
	Container, ID, Name, CPUPerc, MemUsage, MemPerc, NetIO, BlockIO, PIDs string
}

func statsRowOf(ref string, s container.StatsResponse) statsRow {
	id := strings.TrimPrefix(s.ID, "sha256:")
	if len(id) > 12 {
		id = id[:12]
	}
	cpu := 0.0
	if d, sd := float64(s.CPUStats.CPUUsage.TotalUsage)-float64(s.PreCPUStats.CPUUsage.TotalUsage),
		float64(s.CPUStats.SystemUsage)-float64(s.PreCPUStats.SystemUsage); d > 0 && sd > 0 && s.PreCPUStats.SystemUsage > 0 {
		cpu = d / sd * float64(max(s.CPUStats.OnlineCPUs, 1)) * 100
	}
	mem := float64(s.MemoryStats.Usage)
	if v, ok := s.MemoryStats.Stats["total_inactive_file"]; ok && uint64(mem) > v {
		mem -= float64(v)
	} else if v, ok := s.MemoryStats.Stats["inactive_file"]; ok && uint64(mem) > v {
		mem -= float64(v)
	}
	memPerc := 0.0
	if s.MemoryStats.Limit > 0 {
		memPerc = mem / float64(s.MemoryStats.Limit) * 100
	}
	var rx, tx, rd, wr float64
	for _, n := range s.Networks {
		rx, tx = rx+float64(n.RxBytes), tx+float64(n.TxBytes)
	}
	for _, e := range s.BlkioStats.IoServiceBytesRecursive {
		switch strings.ToLower(e.Op) {
		case "read":
			rd += float64(e.Value)
		case "write":
			wr += float64(e.Value)
		}
	}
	return statsRow{
		Container: ref, ID: id, Name: strings.TrimPrefix(s.Name, "/"),
		CPUPerc:  fmt.Sprintf("%.2f%%", cpu),
		MemUsage: units.BytesSize(mem) + " / " + units.BytesSize(float64(s.MemoryStats.Limit)),
		MemPerc:  fmt.Sprintf("%.2f%%", memPerc),
		NetIO:    units.HumanSizeWithPrecision(rx, 3) + " / " + units.HumanSizeWithPrecision(tx, 3),
		BlockIO:  units.HumanSizeWithPrecision(rd, 3) + " / " + units.HumanSizeWithPrecision(wr, 3),
		PIDs:     fmt.Sprint(s.PidsStats.Current),
	}
}

func newStatsCommand(c *CLI) *cobra.Command {
	var all, noStream, noTrunc bool
	var format string
	cmd := &cobra.Command{
		Use:   "stats [OPTIONS] [CONTAINER...]",
		Short: "Display a live stream of container(s) resource usage statistics",
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			refs := args
			if len(refs) == 0 {
				list, err := cl.ContainerList(ctx, client.ContainerListOptions{All: all})
				if err != nil {
					return err
				}
				for _, s := range list {
					refs = append(refs, s.ID[:12])
				}
			}
			for {
				rows := make([]statsRow, len(refs))
				errs := make([]error, len(refs))
				done := make(chan int, len(refs))
				for i, ref := range refs {
					go func() {
						s, err := cl.ContainerStatsOneShot(ctx, ref, false)
						rows[i], errs[i] = statsRowOf(ref, s), err
						done <- i
					}()
				}
				for range refs {
					<-done
				}
				if err := errors.Join(errs...); err != nil {
					return err
				}
				if !noStream {
					fmt.Fprint(c.out, "\033[2J\033[H")
				}
				if err := c.printStats(format, rows); err != nil {
					return err
				}
				if noStream || ctx.Err() != nil {
					return nil
				}
			}
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "show all containers (default shows just running)")
	cmd.Flags().BoolVar(&noStream, "no-stream", false, "disable streaming stats and only pull the first result")
	cmd.Flags().BoolVar(&noTrunc, "no-trunc", false, "do not truncate output")
	cmd.Flags().StringVar(&format, "format", "", "format output using a custom template: 'table', 'table TEMPLATE', 'json' or 'TEMPLATE'")
	return cmd
}

const defaultStatsFormat = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"

var statsHeaders = map[string]string{
	"Container": "CONTAINER", "ID": "CONTAINER ID", "Name": "NAME", "CPUPerc": "CPU %", "MemUsage": "MEM USAGE / LIMIT",
	"MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS",
}

func (c *CLI) printStats(format string, rows []statsRow) error {
	if format == "" || format == "table" {
		format = defaultStatsFormat
	}
	if format == "json" {
		format = "{{json .}}"
	}
	table := strings.HasPrefix(format, "table")
	format = strings.TrimSpace(strings.TrimPrefix(format, "table"))
	out := c.out
	var tw *tabwriter.Writer
	if table {
		tw = tabwriter.NewWriter(c.out, 10, 1, 3, ' ', 0)
		out = tw
		hv := statsHeaders
		header := statsRow{Container: hv["Container"], ID: hv["ID"], Name: hv["Name"], CPUPerc: hv["CPUPerc"], MemUsage: hv["MemUsage"],
			MemPerc: hv["MemPerc"], NetIO: hv["NetIO"], BlockIO: hv["BlockIO"], PIDs: hv["PIDs"]}
		rows = append([]statsRow{header}, rows...)
	}
	saved := c.out
	c.out = out
	defer func() { c.out = saved }()
	if err := templateEach(c, format, rows); err != nil {
		return err
	}
	if tw != nil {
		return tw.Flush()
	}
	return nil
}

func newTopCommand(c *CLI) *cobra.Command {
	return &cobra.Command{
		Use:   "top CONTAINER [ps OPTIONS]",
		Short: "Display the running processes of a container",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			top, err := cl.ContainerTop(cmd.Context(), args[0], strings.Join(args[1:], " "))
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(c.out, 20, 1, 3, ' ', 0)
			fmt.Fprintln(tw, strings.Join(top.Titles, "\t"))
			for _, p := range top.Processes {
				fmt.Fprintln(tw, strings.Join(p, "\t"))
			}
			return tw.Flush()
		},
	}
}

func newPauseCommand(c *CLI) *cobra.Command {
	return &cobra.Command{
		Use:   "pause CONTAINER [CONTAINER...]",
		Short: "Pause all processes within one or more containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			return c.each(args, func(id string) error { return cl.ContainerPause(cmd.Context(), id) })
		},
	}
}

func newUnpauseCommand(c *CLI) *cobra.Command {
	return &cobra.Command{
		Use:   "unpause CONTAINER [CONTAINER...]",
		Short: "Unpause all processes within one or more containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			return c.each(args, func(id string) error { return cl.ContainerUnpause(cmd.Context(), id) })
		},
	}
}

// sizeValue is a pflag.Value for docker's memory sizes ("64m", "1g"; "-1" for unlimited).
type sizeValue struct{ v int64 }

func (b *sizeValue) String() string { return fmt.Sprint(b.v) }
func (b *sizeValue) Type() string   { return "bytes" }
func (b *sizeValue) Set(s string) error {
	if s == "-1" {
		b.v = -1
		return nil
	}
	n, err := units.RAMInBytes(s)
	b.v = n
	return err
}

func newUpdateCommand(c *CLI) *cobra.Command {
	var mem, swap, reservation sizeValue
	var cpus float64
	var shares, pids, quota, period int64
	var cpusetCPUs, cpusetMems, restart string
	var blkio uint16
	cmd := &cobra.Command{
		Use:   "update [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Update configuration of one or more containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			f := cmd.Flags()
			var u container.UpdateConfig
			u.Memory, u.MemorySwap, u.MemoryReservation = mem.v, swap.v, reservation.v
			u.CPUShares, u.CPUQuota, u.CPUPeriod = shares, quota, period
			u.CpusetCpus, u.CpusetMems, u.BlkioWeight = cpusetCPUs, cpusetMems, blkio
			if f.Changed("cpus") {
				u.NanoCPUs = int64(cpus * 1e9)
			}
			if f.Changed("pids-limit") {
				u.PidsLimit = &pids
			}
			if restart != "" {
				rp, err := parseRestartPolicy(restart)
				if err != nil {
					return err
				}
				u.RestartPolicy = rp
			}
			return c.each(args, func(id string) error {
				_, err := cl.ContainerUpdate(cmd.Context(), id, u)
				return err
			})
		},
	}
	f := cmd.Flags()
	f.VarP(&mem, "memory", "m", "memory limit")
	f.Var(&swap, "memory-swap", "swap limit equal to memory plus swap: -1 to enable unlimited swap")
	f.Var(&reservation, "memory-reservation", "memory soft limit")
	f.Float64Var(&cpus, "cpus", 0, "number of CPUs")
	f.Int64VarP(&shares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	f.Int64Var(&quota, "cpu-quota", 0, "limit CPU CFS (Completely Fair Scheduler) quota")
	f.Int64Var(&period, "cpu-period", 0, "limit CPU CFS (Completely Fair Scheduler) period")
	f.StringVar(&cpusetCPUs, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	f.StringVar(&cpusetMems, "cpuset-mems", "", "MEMs in which to allow execution (0-3, 0,1)")
	f.Int64Var(&pids, "pids-limit", 0, "tune container pids limit (set -1 for unlimited)")
	f.Uint16Var(&blkio, "blkio-weight", 0, "block IO (relative weight), between 10 and 1000, or 0 to disable")
	f.StringVar(&restart, "restart", "", "restart policy to apply when a container exits")
	return cmd
}

// parseRestartPolicy reads no, always, unless-stopped, on-failure[:N].
func parseRestartPolicy(s string) (container.RestartPolicy, error) {
	name, n, _ := strings.Cut(s, ":")
	rp := container.RestartPolicy{Name: container.RestartPolicyMode(name)}
	if n != "" {
		var count int
		if _, err := fmt.Sscanf(n, "%d", &count); err != nil {
			return rp, errdefs.Invalidf("invalid restart policy %q: maximum retry count must be a number", s)
		}
		rp.MaximumRetryCount = count
	}
	return rp, nil
}

func newSystemCommand(c *CLI) *cobra.Command {
	cmd := &cobra.Command{Use: "system", Short: "Manage berth"}
	cmd.AddCommand(newSystemDfCommand(c), newSystemPruneCommand(c))
	return cmd
}

func newSystemDfCommand(c *CLI) *cobra.Command {
	var verbose bool
	var format string
	cmd := &cobra.Command{
		Use:   "df [OPTIONS]",
		Short: "Show berth disk usage",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			du, err := cl.DiskUsage(cmd.Context())
			if err != nil {
				return err
			}
			type row struct{ Type, TotalCount, Active, Size, Reclaimable string }
			var rows []row
			var imgSize, imgFree int64
			var imgActive int
			for _, i := range du.Images {
				imgSize += i.Size
				if i.Containers > 0 {
					imgActive++
				} else {
					imgFree += i.Size
				}
			}
			rows = append(rows, row{"Images", fmt.Sprint(len(du.Images)), fmt.Sprint(imgActive), units.HumanSize(float64(imgSize)), reclaim(imgFree, imgSize)})
			var cSize, cFree int64
			var cActive int
			for _, ct := range du.Containers {
				cSize += ct.SizeRw
				if ct.State == container.StateRunning || ct.State == container.StatePaused {
					cActive++
				} else {
					cFree += ct.SizeRw
				}
			}
			rows = append(rows, row{"Containers", fmt.Sprint(len(du.Containers)), fmt.Sprint(cActive), units.HumanSize(float64(cSize)), reclaim(cFree, cSize)})
			var vSize, vFree int64
			var vActive int
			for _, v := range du.Volumes {
				if v.UsageData == nil {
					continue
				}
				size := max(v.UsageData.Size, 0)
				vSize += size
				if v.UsageData.RefCount > 0 {
					vActive++
				} else {
					vFree += size
				}
			}
			rows = append(rows, row{"Local Volumes", fmt.Sprint(len(du.Volumes)), fmt.Sprint(vActive), units.HumanSize(float64(vSize)), reclaim(vFree, vSize)})
			rows = append(rows, row{"Build Cache", "0", "0", "0B", "0B"})
			if format != "" {
				return templateEach(c, format, rows)
			}
			tw := tabwriter.NewWriter(c.out, 10, 1, 3, ' ', 0)
			fmt.Fprintln(tw, "TYPE\tTOTAL\tACTIVE\tSIZE\tRECLAIMABLE")
			for _, r := range rows {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Type, r.TotalCount, r.Active, r.Size, r.Reclaimable)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if verbose {
				fmt.Fprintln(c.out, "\nContainers space usage:")
				tw := tabwriter.NewWriter(c.out, 10, 1, 3, ' ', 0)
				fmt.Fprintln(tw, "CONTAINER ID\tIMAGE\tSIZE\tCREATED\tSTATUS\tNAMES")
				for _, ct := range du.Containers {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s ago\t%s\t%s\n", ct.ID[:12], ct.Image, units.HumanSize(float64(ct.SizeRw)),
						units.HumanDuration(time.Since(time.Unix(ct.Created, 0))), ct.Status, strings.TrimPrefix(strings.Join(ct.Names, ","), "/"))
				}
				return tw.Flush()
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "show detailed information on space usage")
	cmd.Flags().StringVar(&format, "format", "", "format output using a custom template")
	return cmd
}

func reclaim(free, total int64) string {
	pct := 0
	if total > 0 {
		pct = int(float64(free) / float64(total) * 100)
	}
	return fmt.Sprintf("%s (%d%%)", units.HumanSize(float64(free)), pct)
}

func newSystemPruneCommand(c *CLI) *cobra.Command {
	var all, force, volumes bool
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused data",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			if !force {
				return errdefs.Invalidf("prune removes stopped containers, dangling images and (with --volumes) unused volumes for good: confirm with --force")
			}
			ctx := cmd.Context()
			var freed uint64
			cr, err := cl.PruneContainers(ctx, nil)
			if err != nil {
				return err
			}
			freed += cr.SpaceReclaimed
			if len(cr.ContainersDeleted) > 0 {
				fmt.Fprintln(c.out, "Deleted Containers:")
				for _, id := range cr.ContainersDeleted {
					fmt.Fprintln(c.out, id)
				}
				fmt.Fprintln(c.out)
			}
			if volumes {
				vr, err := cl.VolumePrune(ctx, nil)
				if err != nil {
					return err
				}
				freed += vr.SpaceReclaimed
				if len(vr.VolumesDeleted) > 0 {
					fmt.Fprintln(c.out, "Deleted Volumes:")
					for _, n := range vr.VolumesDeleted {
						fmt.Fprintln(c.out, n)
					}
					fmt.Fprintln(c.out)
				}
			}
			ir, err := cl.PruneImages(ctx, all)
			if err != nil {
				return err
			}
			freed += ir.SpaceReclaimed
			if len(ir.ImagesDeleted) > 0 {
				fmt.Fprintln(c.out, "Deleted Images:")
				for _, d := range ir.ImagesDeleted {
					if d.Untagged != "" {
						fmt.Fprintln(c.out, "untagged:", d.Untagged)
					}
					if d.Deleted != "" {
						fmt.Fprintln(c.out, "deleted:", d.Deleted)
					}
				}
				fmt.Fprintln(c.out)
			}
			fmt.Fprintln(c.out, "Total reclaimed space:", units.HumanSize(float64(freed)))
			return nil
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "remove all unused images not just dangling ones")
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	cmd.Flags().BoolVar(&volumes, "volumes", false, "prune anonymous volumes")
	return cmd
}
