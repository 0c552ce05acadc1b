package view

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/cli/jsonpath"
	"slipway.dev/slipway/internal/manifest"
)

// The -o formats of get and the commands that list (table, wide, json,
// yaml, name, jsonpath=, custom-columns=), --sort-by, and the kinds' names
// as the commands take them: presentation of api objects, like the rest
// of this package.

// OutputHelp is what -o takes, for the flag and the errors.
const OutputHelp = "table (default), wide, json, yaml, name, jsonpath=TEMPLATE or custom-columns=HEADER:PATH,..."

// column is one of -o custom-columns: a header and the path under it.
type column struct {
	header string
	path   *jsonpath.Template
}

// ParseOutput checks -o and reads the template of jsonpath= or the columns
// of custom-columns=.
func ParseOutput(output string) (format string, tmpl *jsonpath.Template, cols []column, err error) {
	format, arg, _ := strings.Cut(output, "=")
	switch format {
	case "", "table", "wide", "json", "yaml", "name":
		if arg != "" {
			return "", nil, nil, fmt.Errorf("output format %q takes no =: use %s", format, OutputHelp)
		}
		return format, nil, nil, nil
	case "jsonpath":
		if arg == "" {
			return "", nil, nil, fmt.Errorf("-o jsonpath needs a template, e.g. -o jsonpath='{.items[*].metadata.name}'")
		}
		tmpl, err := jsonpath.Parse(arg)
		return format, tmpl, nil, err
	case "custom-columns":
		if arg == "" {
			return "", nil, nil, fmt.Errorf("-o custom-columns needs columns, e.g. -o custom-columns=NAME:.metadata.name,PHASE:.status.phase")
		}
		for spec := range strings.SplitSeq(arg, ",") {
			h, p, ok := strings.Cut(spec, ":")
			if !ok || h == "" || p == "" {
				return "", nil, nil, fmt.Errorf("custom column %q: must be HEADER:PATH, e.g. NAME:.metadata.name", spec)
			}
			t, err := jsonpath.ParseExpr(p)
			if err != nil {
				return "", nil, nil, err
			}
			cols = append(cols, column{header: h, path: t})
		}
		return format, nil, cols, nil
	}
	return "", nil, nil, fmt.Errorf("unsupported output format %q: use %s", output, OutputHelp)
}

// Generic is an object's JSON form as jsonpath reads it.
func Generic(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out any
	err = dec.Decode(&out)
	return out, err
}

// customRows are the rows of -o custom-columns: a path matching nothing
// is <none>, several results are joined with commas (as kubectl does).
func customRows(objs []api.Object, cols []column) ([]string, [][]string, error) {
	header := make([]string, len(cols))
	for i, c := range cols {
		header[i] = c.header
	}
	rows := make([][]string, 0, len(objs))
	for _, o := range objs {
		g, err := Generic(o)
		if err != nil {
			return nil, nil, err
		}
		row := make([]string, len(cols))
		for i, c := range cols {
			var parts []string
			for _, v := range c.path.Values(g) {
				parts = append(parts, jsonpath.Text(v))
			}
			row[i] = "<none>"
			if len(parts) > 0 {
				row[i] = strings.Join(parts, ",")
			}
		}
		rows = append(rows, row)
	}
	return header, rows, nil
}

// SortBy orders objs by the value of a path (--sort-by=.metadata.name):
// numbers as numbers, anything else by its text; objects without the
// field first, as kubectl puts them.
func SortBy(objs []api.Object, expr string) error {
	t, err := jsonpath.ParseExpr(expr)
	if err != nil {
		return fmt.Errorf("--sort-by: %w", err)
	}
	keys := make([]any, len(objs))
	for i, o := range objs {
		g, err := Generic(o)
		if err != nil {
			return err
		}
		if v := t.Values(g); len(v) > 0 {
			keys[i] = v[0]
		}
	}
	idx := make([]int, len(objs))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool {
		ka, kb := keys[idx[a]], keys[idx[b]]
		if c, ok := jsonpath.Compare(ka, kb); ok {
			return c < 0
		}
		if ka == nil || kb == nil {
			return ka == nil && kb != nil
		}
		return jsonpath.Text(ka) < jsonpath.Text(kb)
	})
	sorted := make([]api.Object, len(objs))
	for i, j := range idx {
		sorted[i] = objs[j]
	}
	copy(objs, sorted)
	return nil
}

// allKinds are what `get all` lists: what a user deploys and what it makes.
var allKinds = []string{"App", "Revision", "Pod", "Service", "Route"}

// ParseKinds reads get's first argument: a kind, kinds separated by commas
// (svc,routes) or all.
func ParseKinds(arg string) ([]api.KindInfo, error) {
	var out []api.KindInfo
	for k := range strings.SplitSeq(arg, ",") {
		if k == "all" {
			for _, n := range allKinds {
				info, _ := api.LookupKind(n)
				out = append(out, info)
			}
			continue
		}
		info, err := LookupKind(k)
		if err != nil {
			return nil, err
		}
		if !slices.ContainsFunc(out, func(o api.KindInfo) bool { return o.Kind == info.Kind }) {
			out = append(out, info)
		}
	}
	return out, nil
}

// LookupKind resolves a kind's name, suggesting the nearest when it is
// unknown.
func LookupKind(name string) (api.KindInfo, error) {
	if name == "" {
		return api.KindInfo{}, fmt.Errorf("must name a kind: one of %s", KindList())
	}
	info, ok := api.LookupKind(name)
	if ok {
		return info, nil
	}
	if s := nearestKind(name); s != "" {
		return api.KindInfo{}, fmt.Errorf("unknown kind %q: did you mean %s? (kinds: %s)", name, s, KindList())
	}
	return api.KindInfo{}, fmt.Errorf("unknown kind %q: use one of %s", name, KindList())
}

// KindNames are every spelling of every kind: singular, plural and short.
func KindNames() []string {
	var names []string
	for _, k := range api.Kinds {
		names = append(names, strings.ToLower(k.Kind), k.Plural)
		names = append(names, k.Short...)
	}
	return names
}

// nearestKind is the spelling of a kind closest to name (at most a third
// of its letters off), "" when none is close.
func nearestKind(name string) string {
	name = strings.ToLower(name)
	best, bestD := "", len(name)/3+1
	for _, n := range KindNames() {
		if d := editDistance(name, n); d < bestD {
			best, bestD = n, d
		}
	}
	if best == "" {
		return ""
	}
	// Suggest the plural, as a user lists: "pods", not "po".
	info, _ := api.LookupKind(best)
	return info.Plural
}

// editDistance is the optimal string alignment distance between a and b:
// insertions, deletions, substitutions and swaps of neighbours ("pdos").
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

func KindList() string {
	var names []string
	for _, k := range api.Kinds {
		names = append(names, k.Plural)
	}
	return strings.Join(names, ", ")
}

// KindHelp lists every kind with every spelling the commands take.
func KindHelp() string {
	var b strings.Builder
	for _, k := range api.Kinds {
		var other []string
		if s := strings.ToLower(k.Kind); s != k.Plural {
			other = append(other, s)
		}
		fmt.Fprintf(&b, "  %-13s %s\n", k.Plural, strings.Join(append(other, k.Short...), ", "))
	}
	return b.String()
}

func SortObjects(objs []api.Object) {
	sort.SliceStable(objs, func(i, j int) bool {
		a, b := objs[i].GetMeta(), objs[j].GetMeta()
		if ea, ok := objs[i].(*api.Event); ok {
			if eb, ok := objs[j].(*api.Event); ok && !ea.LastTimestamp.Equal(eb.LastTimestamp) {
				return ea.LastTimestamp.Before(eb.LastTimestamp)
			}
		}
		if a.Project != b.Project {
			return a.Project < b.Project
		}
		return a.Name < b.Name
	})
}

// Printer renders objects in one of the output formats of get, events and
// the watches (-o). Secrets are
// always redacted.
type Printer struct {
	W           io.Writer
	Format      string
	Tmpl        *jsonpath.Template // -o jsonpath=
	Cols        []column           // -o custom-columns=
	WithProject bool
	NoHeader    bool
	ShowLabels  bool
	KindPrefix  bool
	al          Aligner   // a watch's rows stay under the header's columns
	printed     int       // documents written, for a watch's --- separators
	Now         time.Time // AGE is counted to it; the zero time is the clock's now
}

// NewColumns makes the next rows take columns of their own (another
// kind's table), not those of the rows printed so far.
func (p *Printer) NewColumns() { p.al = Aligner{} }

func (p *Printer) Print(objs []api.Object, single bool) error {
	red := make([]api.Object, len(objs))
	for i, o := range objs {
		red[i] = manifest.RedactSecrets(o)
	}
	switch p.Format {
	case "", "table", "wide":
		return p.al.Print(p.W, red, TableOptions{Wide: p.Format == "wide", WithProject: p.WithProject, NoHeader: p.NoHeader,
			ShowLabels: p.ShowLabels, KindPrefix: p.KindPrefix}, cmp.Or(p.Now, time.Now()))
	case "custom-columns":
		h, rows, err := customRows(red, p.Cols)
		if err != nil {
			return err
		}
		if p.NoHeader {
			h = nil
		}
		return p.al.Rows(p.W, h, rows)
	case "name":
		for _, o := range red {
			fmt.Fprintf(p.W, "%s/%s\n", strings.ToLower(o.GetTypeMeta().Kind), o.GetMeta().Name)
		}
		return nil
	case "jsonpath":
		g, err := Generic(listOrObject(red, single))
		if err != nil {
			return err
		}
		return p.Tmpl.Execute(p.W, g)
	case "json":
		enc := json.NewEncoder(p.W)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "    ")
		return enc.Encode(listOrObject(red, single))
	case "yaml":
		var b []byte
		var err error
		if single {
			b, err = manifest.EncodeYAML(red[0]) // the object as itself: apply -f takes it back
		} else {
			b, err = manifest.EncodeYAMLList(red)
		}
		if err != nil {
			return err
		}
		if p.printed > 0 {
			io.WriteString(p.W, "---\n") // a watch's next document
		}
		p.printed++
		_, err = p.W.Write(b)
		return err
	}
	return fmt.Errorf("unsupported output format %q", p.Format)
}

// listOrObject is what json and jsonpath see: the object itself when one
// was asked for, else a List of them.
func listOrObject(objs []api.Object, single bool) any {
	if single && len(objs) == 1 {
		return objs[0]
	}
	return map[string]any{"apiVersion": api.Version, "kind": "List", "items": objs}
}
