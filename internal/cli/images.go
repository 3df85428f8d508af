package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/image"
	"github.com/spf13/cobra"

	"github.com/berth/berth/client"
	"github.com/berth/berth/internal/errdefs"
)

// registryAuthFor reads the credentials docker's config.json
// (~/.docker/config.json, or $DOCKER_CONFIG) keeps for the registry a
// reference names, from its credential helper or its "auths" entry,
// encoded for X-Registry-Auth ("" when there are none).
func registryAuthFor(ref string) (string, error) {
	host := defaultRegistry
	if i := strings.IndexByte(ref, '/'); i > 0 && strings.ContainsAny(ref[:i], ".:") || strings.HasPrefix(ref, "localhost/") {
		host = ref[:i]
	}
	user, secret, err := credentialsFor(host)
	if err != nil {
		return "", err
	}
	return encodeAuth(user, secret), nil
}

func newPullCommand(c *CLI) *cobra.Command {
	var quiet bool
	var platform string
	cmd := &cobra.Command{
		Use:   "pull [OPTIONS] NAME[:TAG|@DIGEST]",
		Short: "Download an image from a registry",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			line := func(s string) {
				if !quiet {
					fmt.Fprintln(c.out, s)
				}
			}
			auth, err := registryAuthFor(args[0])
			if err != nil {
				return err
			}
			if err := cl.ImagePull(cmd.Context(), args[0], platform, auth, line); err != nil {
				return err
			}
			if quiet {
				fmt.Fprintln(c.out, args[0])
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "suppress verbose output")
	cmd.Flags().StringVar(&platform, "platform", "", "set platform if server is multi-platform capable")
	return cmd
}

func newPushCommand(c *CLI) *cobra.Command {
	var quiet bool
	cmd := &cobra.Command{
		Use:   "push [OPTIONS] NAME[:TAG]",
		Short: "Upload an image to a registry",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			line := func(s string) {
				if !quiet {
					fmt.Fprintln(c.out, s)
				}
			}
			auth, err := registryAuthFor(args[0])
			if err != nil {
				return err
			}
			return cl.ImagePush(cmd.Context(), args[0], auth, line)
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "suppress verbose output")
	return cmd
}

func newImagesCommand(c *CLI) *cobra.Command {
	var quiet bool
	var format string
	cmd := &cobra.Command{
		Use:   "images [OPTIONS]",
		Short: "List images",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			list, err := cl.ImageList(cmd.Context())
			if err != nil {
				return err
			}
			return c.buffered(func() error { return c.printImages(list, quiet, format) })
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only show image IDs")
	cmd.Flags().StringVar(&format, "format", "", "format output using a Go template")
	return cmd
}

// printImages is images' output: a --format per image, or the table.
func (c *CLI) printImages(list []image.Summary, quiet bool, format string) error {
	if format != "" {
		return templateEach(c, format, list)
	}
	tw := tabwriter.NewWriter(c.out, 0, 0, 3, ' ', 0)
	if !quiet {
		fmt.Fprintln(tw, "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE")
	}
	for _, img := range list {
		id := strings.TrimPrefix(img.ID, "sha256:")
		if len(id) > 12 {
			id = id[:12]
		}
		if quiet {
			fmt.Fprintln(tw, id)
			continue
		}
		tags := img.RepoTags
		if len(tags) == 0 {
			tags = []string{"<none>:<none>"}
		}
		for _, t := range tags {
			i := strings.LastIndex(t, ":")
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s ago\t%s\n", t[:i], t[i+1:], id,
				units.HumanDuration(time.Since(time.Unix(img.Created, 0))), units.HumanSizeWithPrecision(float64(img.Size), 3))
		}
	}
	return tw.Flush()
}

func newTagCommand(c *CLI) *cobra.Command {
	return &cobra.Command{
		Use:   "tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
		Short: "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			return cl.ImageTag(cmd.Context(), args[0], args[1])
		},
	}
}

func newRmiCommand(c *CLI) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "rmi [OPTIONS] IMAGE [IMAGE...]",
		Short: "Remove one or more images",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			failed := false
			for _, ref := range args {
				items, err := cl.ImageRemove(cmd.Context(), ref, force)
				if err != nil {
					fmt.Fprintln(c.errOut, "Error response from daemon:", err)
					failed = true
					continue
				}
				for _, it := range items {
					if it.Untagged != "" {
						fmt.Fprintln(c.out, "Untagged:", it.Untagged)
					}
					if it.Deleted != "" {
						fmt.Fprintln(c.out, "Deleted:", it.Deleted)
					}
				}
			}
			if failed {
				return StatusError{Code: 1}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "force removal of the image")
	return cmd
}

func newImportCommand(c *CLI) *cobra.Command {
	var opts client.ImportOptions
	cmd := &cobra.Command{
		Use:   "import [OPTIONS] file|- [REPOSITORY[:TAG]]",
		Short: "Import the contents from a tarball to create a filesystem image",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			var r io.Reader = cmd.InOrStdin()
			if args[0] != "-" {
				if strings.Contains(args[0], "://") {
					return errdefs.Invalidf("import %s: berth imports a file or stdin, not a URL", args[0])
				}
				f, err := os.Open(args[0])
				if err != nil {
					return errdefs.Invalidf("import: %v", err)
				}
				defer f.Close()
				r = f
			}
			if len(args) == 2 {
				opts.Ref = args[1]
			}
			id, err := cl.ImageImport(cmd.Context(), r, opts)
			if err != nil {
				return err
			}
			fmt.Fprintln(c.out, id)
			return nil
		},
	}
	stringArrayVarP(cmd.Flags(), &opts.Changes, "change", "c", nil, "apply Dockerfile instruction to the created image")
	cmd.Flags().StringVarP(&opts.Message, "message", "m", "", "set commit message for imported image")
	cmd.Flags().StringVar(&opts.Platform, "platform", "", "set platform if server is multi-platform capable")
	return cmd
}

func newLoadCommand(c *CLI) *cobra.Command {
	var input string
	cmd := &cobra.Command{
		Use:   "load [OPTIONS]",
		Short: "Load an image from a tar archive or STDIN",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			var r io.Reader = os.Stdin
			if input != "" {
				f, err := os.Open(input)
				if err != nil {
					return errdefs.Invalidf("--input: %v", err)
				}
				defer f.Close()
				r = f
			}
			lines, err := cl.ImageLoad(cmd.Context(), r)
			for _, l := range lines {
				fmt.Fprintln(c.out, strings.TrimSpace(l))
			}
			return err
		},
	}
	cmd.Flags().StringVarP(&input, "input", "i", "", "read from tar archive file, instead of STDIN")
	return cmd
}

func newSaveCommand(c *CLI) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "save [OPTIONS] IMAGE [IMAGE...]",
		Short: "Save one or more images to a tar archive (streamed to STDOUT by default)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.Client()
			if err != nil {
				return err
			}
			w := c.out
			if output != "" {
				f, err := os.Create(output)
				if err != nil {
					return errdefs.Invalidf("--output: %v", err)
				}
				defer f.Close()
				w = f
			}
			rc, err := cl.ImageSave(cmd.Context(), args)
			if err != nil {
				return err
			}
			defer rc.Close()
			_, err = io.Copy(w, rc)
			return err
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to a file, instead of STDOUT")
	return cmd
}
