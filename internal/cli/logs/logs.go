// Package logs holds `logs`: a pod's, a build's, or every pod of an
// app's, each line prefixed.
package logs

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/cli/cmdutil"
	"slipway.dev/slipway/internal/cli/view"
	"slipway.dev/slipway/internal/client"
)

// maxLogLine bounds what the prefixing copier holds of one line: a longer
// line is printed as several prefixed lines rather than buffered whole.
const maxLogLine = 64 << 10

// NewCmd is `logs`.
func NewCmd(e *cmdutil.Env, g *cmdutil.Globals) *cobra.Command {
	var container string
	var follow, previous bool
	var tail int
	cmd := &cobra.Command{
		Use:   "logs POD | pod/POD | app/NAME | build/NAME",
		Short: "Print the logs of a pod's container, or of every pod of an app",
		Long: `Logs prints what a container wrote to stdout and stderr.

For a pod, -c names the container; it may be left out when the pod has only
one. For app/NAME, the logs of every pod of the app are printed, each line
prefixed with [POD] (or [POD/CONTAINER] when a pod has several containers
and -c is not given: then every container's log is printed). With -f the
pods are followed at once; pods started later are not picked up.`,
		Example: `  # The log of the only container of a pod
  slipway logs hello-1-x7k2p

  # Follow one container of a pod with several
  slipway logs hello-1-x7k2p -c sidecar -f

  # The last 20 lines of the run before the last restart (after a crash)
  slipway logs hello-1-x7k2p --previous --tail 20

  # Every pod of an app, followed, each line prefixed with its pod
  slipway logs app/hello -f

  # A build's log (as slipway build logs NAME)
  slipway logs build/hello-3`,
		ValidArgsFunction: completeLogs(e, g),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("logs takes one pod or app: slipway logs POD or slipway logs app/NAME (got %d arguments)", len(args))
			}
			if tail == 0 || tail < -1 {
				return fmt.Errorf("invalid --tail %d: must be -1 (the whole log) or a positive number of lines", tail)
			}
			kind, name, err := logTarget(args[0])
			if err != nil {
				return err
			}
			cn, err := g.Connect(e)
			if err != nil {
				return err
			}
			opts := client.LogOptions{Container: container, Follow: follow, Previous: previous, TailLines: max(tail, 0)}
			ctx := cmd.Context()
			if kind == "Pod" {
				err = podLogs(ctx, cn, name, opts, e.Stdout)
			} else if kind == "Build" {
				if container != "" || previous || tail > 0 {
					return errors.New("a build's log takes -f only: -c, --previous and --tail are for pods")
				}
				err = cmdutil.BuildLog(ctx, cn, name, follow, e.Stdout) // build.go
			} else {
				err = appLogs(ctx, cn, name, opts, e)
			}
			if err != nil && ctx.Err() != nil {
				return nil // stopped by the user (Ctrl-C), the normal end of -f
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVarP(&container, "container", "c", "", "container to print (may be omitted when a pod has one)")
	f.BoolVarP(&follow, "follow", "f", false, "keep printing new output")
	// No -p: it is --project here, unlike kubectl where it is --previous.
	f.BoolVar(&previous, "previous", false, "print the log of the run before the last restart")
	f.IntVar(&tail, "tail", -1, "print only the last N lines of each log (-1: all)")
	return cmd
}

// logTarget reads POD, pod/POD or app/NAME (and the other spellings of
// those kinds).
func logTarget(arg string) (kind, name string, err error) {
	k, n, ok := strings.Cut(arg, "/")
	if !ok {
		if arg == "" {
			return "", "", errors.New("must name a pod or app/NAME")
		}
		return "Pod", arg, nil
	}
	if n == "" {
		return "", "", fmt.Errorf("%q: missing name after the slash", arg)
	}
	info, found := api.LookupKind(k)
	if !found {
		return "", "", fmt.Errorf("unknown kind %q in %q: logs are read from pods (pod/NAME) and apps (app/NAME)", k, arg)
	}
	if info.Kind != "Pod" && info.Kind != "App" && info.Kind != "Build" {
		return "", "", fmt.Errorf("%s have no logs: logs are read from pods (pod/NAME) and apps (app/NAME)", info.Plural)
	}
	return info.Kind, n, nil
}

// podLogs copies one pod's log as it is: no prefix, as kubectl does.
func podLogs(ctx context.Context, cn *cmdutil.Conn, pod string, opts client.LogOptions, out io.Writer) error {
	rc, err := cn.Client.PodLogs(ctx, cn.Project, pod, opts)
	if err != nil {
		return err
	}
	defer rc.Close()
	if _, err := io.Copy(out, rc); err != nil {
		return fmt.Errorf("reading the log of pod %s: %w", pod, err)
	}
	return nil
}

// logStream is one container log of an app's pod.
type logStream struct {
	pod, container, prefix string
}

// appLogs prints the logs of every pod of an app, each line prefixed with
// where it comes from. One stream failing does not stop the others: each
// failure is reported on stderr and the command fails at the end.
func appLogs(ctx context.Context, cn *cmdutil.Conn, app string, opts client.LogOptions, e *cmdutil.Env) error {
	if _, err := cmdutil.GetApp(ctx, cn, app); err != nil {
		return err
	}
	objs, _, err := cn.Client.List(ctx, cmdutil.PodKind, cn.Project, api.LabelApp+"="+app)
	if err != nil {
		return err
	}
	if len(objs) == 0 {
		return fmt.Errorf("app %s has no pods in project %q", app, cn.Project)
	}
	view.SortObjects(objs)
	streams := appStreams(objs, opts.Container)
	out := &lineWriter{w: e.Stdout}
	var mu sync.Mutex
	var failed []string
	run := func(s logStream) {
		o := opts
		o.Container = s.container
		if err := copyStream(ctx, cn, s, o, out); err != nil {
			if ctx.Err() != nil {
				return
			}
			mu.Lock()
			failed = append(failed, s.prefix)
			fmt.Fprintf(e.Stderr, "error: %s %s\n", s.prefix, strings.TrimPrefix(cmdutil.FormatError(err), "error: "))
			mu.Unlock()
		}
	}
	if opts.Follow {
		var wg sync.WaitGroup
		for _, s := range streams {
			wg.Go(func() { run(s) })
		}
		wg.Wait()
	} else {
		// One after the other, so that the output is grouped and ordered.
		for _, s := range streams {
			run(s)
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d logs of app %s could not be read: %s", len(failed), len(streams), app, strings.Join(failed, ", "))
	}
	return nil
}

// appStreams lists the logs to print: the named container of each pod, or
// every container of each pod when none is named.
func appStreams(pods []api.Object, container string) []logStream {
	var streams []logStream
	for _, o := range pods {
		p, ok := o.(*api.Pod)
		if !ok {
			continue
		}
		name := p.Metadata.Name
		switch {
		case container != "":
			streams = append(streams, logStream{name, container, "[" + name + "]"})
		case len(p.Spec.Containers) == 1:
			streams = append(streams, logStream{name, p.Spec.Containers[0].Name, "[" + name + "]"})
		default:
			for _, c := range p.Spec.Containers {
				streams = append(streams, logStream{name, c.Name, "[" + name + "/" + c.Name + "]"})
			}
		}
	}
	sort.SliceStable(streams, func(i, j int) bool { return streams[i].pod < streams[j].pod })
	return streams
}

func copyStream(ctx context.Context, cn *cmdutil.Conn, s logStream, opts client.LogOptions, out *lineWriter) error {
	rc, err := cn.Client.PodLogs(ctx, cn.Project, s.pod, opts)
	if err != nil {
		return err
	}
	defer rc.Close()
	return copyPrefixed(out, s.prefix+" ", rc)
}

// copyPrefixed writes each line of r with prefix. A last line without a
// newline gets one, so that the next prefix starts a line.
func copyPrefixed(out *lineWriter, prefix string, r io.Reader) error {
	br := bufio.NewReaderSize(r, maxLogLine)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			if werr := out.line(prefix, line); werr != nil {
				return werr
			}
		}
		switch {
		case err == nil, errors.Is(err, bufio.ErrBufferFull):
		case errors.Is(err, io.EOF):
			return nil
		default:
			return err
		}
	}
}

// lineWriter serialises whole lines from concurrent streams so that they
// never interleave within a line.
type lineWriter struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
}

func (l *lineWriter) line(prefix string, line []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(append(l.buf[:0], prefix...), line...)
	if line[len(line)-1] != '\n' {
		l.buf = append(l.buf, '\n')
	}
	_, err := l.w.Write(l.buf)
	return err
}

// completeLogs completes logs' POD, pod/POD, app/NAME and build/NAME.
func completeLogs(e *cmdutil.Env, g *cmdutil.Globals) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx := cmdutil.CompletionContext(cmd)
		if strings.Contains(toComplete, "/") {
			return cmdutil.CompleteSlashed(ctx, e, g, toComplete, func(k api.KindInfo) bool {
				return k.Kind == "Pod" || k.Kind == "App" || k.Kind == "Build"
			}), cobra.ShellCompDirectiveNoFileComp
		}
		return cmdutil.ObjectNames(ctx, e, g, cmdutil.PodKind, toComplete, nil), cobra.ShellCompDirectiveNoFileComp
	}
}
