package cli

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth/berth/client"
	"github.com/berth/berth/internal/errdefs"
)

func newBuildCommand(c *CLI) *cobra.Command {
	var opts client.BuildOptions
	var buildArgs, labels []string
	cmd := &cobra.Command{
		Use:   "build [OPTIONS] PATH | -",
		Short: "Build an image from a Dockerfile",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.BuildArgs = map[string]*string{}
			for _, kv := range buildArgs {
				k, v, ok := strings.Cut(kv, "=")
				if k == "" {
					return errdefs.Invalidf("invalid --build-arg %q: want key=value", kv)
				}
				if !ok {
					ev, set := os.LookupEnv(k)
					if !set {
						opts.BuildArgs[k] = nil
						continue
					}
					v = ev
				}
				opts.BuildArgs[k] = &v
			}
			var err error
			if opts.Labels, err = keyValues("label", labels); err != nil {
				return err
			}
			cl, err := c.Client()
			if err != nil {
				return err
			}
			var body io.Reader
			if args[0] == "-" {
				body = cmd.InOrStdin()
			} else {
				df, extra, err := dockerfileInContext(args[0], opts.Dockerfile)
				if err != nil {
					return err
				}
				opts.Dockerfile = df
				if dir, ok := localContext(cmd.Context(), cl, args[0], extra); ok {
					opts.ContextDir = dir
				} else {
					pr, pw := io.Pipe()
					go func() { pw.CloseWithError(tarContext(pw, args[0], extra, df)) }()
					defer pr.Close()
					body = pr
				}
			}
			id, err := cl.ImageBuild(cmd.Context(), body, opts, c.out)
			if err != nil {
				return err
			}
			if opts.Quiet {
				fmt.Fprintln(c.out, id)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&opts.Dockerfile, "file", "f", "", "name of the Dockerfile (default: PATH/Dockerfile)")
	stringArrayVarP(f, &opts.Tags, "tag", "t", nil, "name and optionally a tag in the name:tag format (repeatable)")
	f.StringVar(&opts.Target, "target", "", "set the target build stage to build")
	f.BoolVar(&opts.NoCache, "no-cache", false, "do not use cache when building the image")
	f.BoolVar(&opts.Pull, "pull", false, "always attempt to pull a newer version of the image")
	f.BoolVarP(&opts.Quiet, "quiet", "q", false, "suppress the build output and print image ID on success")
	stringArrayVar(f, &buildArgs, "build-arg", nil, "set build-time variables")
	stringArrayVar(f, &labels, "label", nil, "set metadata for an image")
	f.StringVar(&opts.Platform, "platform", "", "set platform if server is multi-platform capable")
	f.StringVar(&opts.Network, "network", "", "set the networking mode for the RUN instructions during build")
	return cmd
}

// localContext returns the context directory's absolute path when the
// daemon can copy it itself instead of receiving it as a tarball
// (docs/decisions/0096): a berth daemon on this host's unix socket, a
// root client (the daemon reads the directory as root), and a Dockerfile
// inside the context.
func localContext(ctx context.Context, cl *client.Client, dir, extra string) (string, bool) {
	if extra != "" || os.Geteuid() != 0 || !cl.Local() || !cl.HasFeature(ctx, "contextdir") {
		return "", false
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", false
	}
	if abs, err = filepath.EvalSymlinks(abs); err != nil {
		return "", false
	}
	return abs, true
}

// dockerfileInContext returns the Dockerfile's name inside the context, and
// the host path of a Dockerfile outside the context that must be added to
// the tarball under that name ("" if none).
func dockerfileInContext(ctxDir, file string) (name, extra string, err error) {
	if file == "" {
		return "Dockerfile", "", nil
	}
	absCtx, err := filepath.Abs(ctxDir)
	if err != nil {
		return "", "", err
	}
	p := file
	if !filepath.IsAbs(p) {
		// docker resolves -f against the working directory.
		if p, err = filepath.Abs(p); err != nil {
			return "", "", err
		}
	}
	if _, err := os.Stat(p); err != nil {
		// fall back to the name inside the context, as docker does
		if _, err2 := os.Stat(filepath.Join(absCtx, file)); err2 == nil && !filepath.IsAbs(file) {
			return filepath.ToSlash(file), "", nil
		}
		return "", "", errdefs.Invalidf("unable to prepare context: the Dockerfile (%s) cannot be read: %v", file, err)
	}
	rel, err := filepath.Rel(absCtx, p)
	if err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return filepath.ToSlash(rel), "", nil
	}
	return ".berth-dockerfile", p, nil
}

// tarContext writes dir as a tar stream, plus the file extra as name.
func tarContext(w io.Writer, dir, extra, name string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
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
			return nil // sockets and such are left out
		}
		hdr.Name = filepath.ToSlash(rel)
		if fi.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uname, hdr.Gname = "", ""
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			return copyFileTo(tw, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if extra != "" {
		fi, err := os.Stat(extra)
		if err != nil {
			return err
		}
		hdr, _ := tar.FileInfoHeader(fi, "")
		hdr.Name = name
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if err := copyFileTo(tw, extra); err != nil {
			return err
		}
	}
	return tw.Close()
}

func copyFileTo(w io.Writer, p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}
