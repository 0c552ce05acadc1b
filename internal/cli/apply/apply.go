// Package apply holds the verbs that write objects as given: apply,
// delete, label, annotate and patch.
package apply

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/cli/cmdutil"
	"slipway.dev/slipway/internal/manifest"
)

// maxReadBytes bounds what the CLI reads of one input before the manifest
// decoder's own (smaller) limit gives the precise error.
const maxReadBytes = 64 << 20

// NewApplyCmd is `apply -f`.
func NewApplyCmd(e *cmdutil.Env, g *cmdutil.Globals) *cobra.Command {
	var files []string
	var recursive, dryRun bool
	cmd := &cobra.Command{
		Use:   "apply -f FILE|DIR|-",
		Short: "Create or update objects from manifests",
		Long: `Apply creates the objects in the manifests or updates them to match.

Every document of every file is decoded and validated first; if any is
invalid, every problem is reported and nothing is written. Each object is
then reported as created, configured or unchanged.`,
		Example: `  slipway apply -f examples/hello/
  slipway apply -f app.yaml -p staging
  cat app.yaml | slipway apply -f -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(files) == 0 {
				return errors.New(`must give -f FILE, DIR or - (read standard input)`)
			}
			cn, err := g.Connect(e)
			if err != nil {
				return err
			}
			docs, err := readManifestDocs(e, files, recursive, cn.Project, g.ProjectSet(e))
			if err != nil {
				return err
			}
			if len(docs) == 0 {
				return errors.New("no objects found in " + strings.Join(files, ", "))
			}
			objs := make([]api.Object, len(docs))
			for i, d := range docs {
				objs[i] = d.Object
			}
			return atLines(cmdutil.ApplyObjects(cmd.Context(), e, cn, objs, dryRun), docs)
		},
	}
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "manifest file, directory of manifests, or - for standard input (repeatable)")
	cmd.Flags().BoolVarP(&recursive, "recursive", "R", false, "read directories given with -f recursively")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "validate on the server and report what would change, writing nothing")
	return cmd
}

// atLines puts the server's answer to an apply of several documents in
// the words of the manifests' own errors: each cause of an invalid item
// once, as file:line: Kind "name": field: message.
func atLines(err error, docs []manifest.Document) error {
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Reason != api.ReasonInvalid || len(ae.Causes) == 0 {
		return err
	}
	var lines []string
	for _, c := range ae.Causes {
		var i int
		if _, scanErr := fmt.Sscanf(c.Field, "items[%d]", &i); scanErr != nil || i < 0 || i >= len(docs) {
			return err // not an apply's item: leave it as the server said it
		}
		d := docs[i]
		field := strings.TrimPrefix(strings.TrimPrefix(c.Field, fmt.Sprintf("items[%d]", i)), ".")
		l := fmt.Sprintf("%s:%d: %s %q: ", d.Source, d.Line, d.Object.GetTypeMeta().Kind, d.Object.GetMeta().Name)
		if field != "" {
			l += field + ": "
		}
		l += c.Message
		if !slices.Contains(lines, l) {
			lines = append(lines, l)
		}
	}
	return errors.New(strings.Join(lines, "\nerror: "))
}

// readManifests decodes every document of every input, collecting the
// problems of all of them before failing, so a user sees everything to fix
// at once.
func readManifests(e *cmdutil.Env, inputs []string, recursive bool, project string, explicit bool) ([]api.Object, error) {
	docs, err := readManifestDocs(e, inputs, recursive, project, explicit)
	if err != nil {
		return nil, err
	}
	objs := make([]api.Object, len(docs))
	for i, d := range docs {
		objs[i] = d.Object
	}
	return objs, nil
}

// readManifestDocs is readManifests with where each object came from.
func readManifestDocs(e *cmdutil.Env, inputs []string, recursive bool, project string, explicit bool) ([]manifest.Document, error) {
	var objs []manifest.Document
	var problems []manifest.Problem
	var plain []string
	for _, in := range inputs {
		srcs, err := expandInput(e, in, recursive)
		if err != nil {
			return nil, err
		}
		for _, src := range srcs {
			docs, err := manifest.Options{Project: project}.Decode(src.name, src.data)
			var me *manifest.Error
			switch {
			case errors.As(err, &me):
				problems = append(problems, me.Problems...)
				continue
			case err != nil:
				plain = append(plain, err.Error())
				continue
			}
			for _, d := range docs {
				m := d.Object.GetMeta()
				info, _ := api.LookupKind(d.Object.GetTypeMeta().Kind)
				if explicit && info.Projects && m.Project != project {
					plain = append(plain, fmt.Sprintf("%s:%d: %s %q: metadata.project is %q but the command works in project %q (-p or SLIPWAY_PROJECT); remove one of them",
						src.name, d.Line, info.Kind, m.Name, m.Project, project))
					continue
				}
				objs = append(objs, d)
			}
		}
	}
	if len(plain) > 0 {
		return nil, errors.New(strings.Join(plain, "\nerror: "))
	}
	if len(problems) > 0 {
		return nil, &manifest.Error{Problems: problems}
	}
	return objs, nil
}

type source struct {
	name string
	data []byte
}

func expandInput(e *cmdutil.Env, in string, recursive bool) ([]source, error) {
	if in == "-" {
		b, err := io.ReadAll(io.LimitReader(e.Stdin, maxReadBytes+1))
		if err != nil {
			return nil, fmt.Errorf("reading standard input: %w", err)
		}
		return []source{{name: "<stdin>", data: b}}, nil
	}
	st, err := os.Stat(in)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", in, errors.Unwrap(err))
	}
	if !st.IsDir() {
		b, err := readCapped(in)
		if err != nil {
			return nil, err
		}
		return []source{{name: in, data: b}}, nil
	}
	var names []string
	err = filepath.WalkDir(in, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != in && !recursive {
				return filepath.SkipDir
			}
			return nil
		}
		switch strings.ToLower(filepath.Ext(p)) {
		case ".yaml", ".yml", ".json":
			names = append(names, p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var out []source
	for _, n := range names {
		b, err := readCapped(n)
		if err != nil {
			return nil, err
		}
		out = append(out, source{name: n, data: b})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no .yaml, .yml or .json files in the directory", in)
	}
	return out, nil
}

func readCapped(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxReadBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return b, nil
}
