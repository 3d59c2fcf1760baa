// Package deadletters is the "dead-letters" command of the forwarder and
// of the plugin: list, show, drop and replay the events the forwarder kept
// as dead letters, with nothing but a NATS connection. How that connection
// is made is the caller's (a URL, or a port-forward into the cluster).
package deadletters

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/falco-phantom/kubectl-falco-phantom/internal/cmdmain"
	"github.com/falco-phantom/kubectl-falco-phantom/internal/input"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/cmd/output"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/deadletters"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/forwarder"
)

// Connector opens the NATS connection the commands work on.
type Connector interface {
	// AddFlags registers the flags that say where NATS is.
	AddFlags(fs *pflag.FlagSet)
	// Connect connects; close ends the connection and whatever it needed.
	Connect(ctx context.Context) (nc *nats.Conn, close func(), err error)
}

// NATSConnector connects to a NATS URL, with an optional credentials file.
type NATSConnector struct {
	URL, CredsFile string
}

// NewNATSConnector takes its defaults from NATS_URL and NATS_CREDS_FILE.
func NewNATSConnector(getenv func(string) string) *NATSConnector {
	return &NATSConnector{URL: input.Env(getenv, "NATS_URL", nats.DefaultURL), CredsFile: getenv("NATS_CREDS_FILE")}
}

// AddFlags adds --nats-url and --nats-creds-file.
func (c *NATSConnector) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.URL, "nats-url", c.URL, "NATS server URL [NATS_URL]")
	fs.Lookup("nats-url").DefValue = forwarder.RedactURL(c.URL)
	fs.StringVar(&c.CredsFile, "nats-creds-file", c.CredsFile, "NATS credentials file [NATS_CREDS_FILE]")
}

// Connect connects to c.URL.
func (c *NATSConnector) Connect(context.Context) (*nats.Conn, func(), error) {
	opts := []nats.Option{nats.Name("falco-phantom-dead-letters")}
	if c.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(c.CredsFile))
	}
	nc, err := nats.Connect(c.URL, opts...)
	if err != nil {
		return nil, nil, forwarder.ConnectError(c.URL, err)
	}
	return nc, nc.Close, nil
}

// common are the flags every subcommand takes.
type common struct {
	streams   genericiooptions.IOStreams
	connector Connector
	stream    string
	reasons   []string
	since     string
	until     string
	filter    deadletters.Filter
}

func (c *common) addFilterFlags(fs *pflag.FlagSet) {
	fs.StringSliceVar(&c.reasons, "reason", nil, "only dead letters of these reasons: "+strings.Join(forwarder.DeadLetterReasons(), ", "))
	fs.StringVar(&c.since, "since", "", "only events received since then: a time (RFC 3339) or a duration ago (2h)")
	fs.StringVar(&c.until, "until", "", "only events received until then: a time (RFC 3339) or a duration ago")
}

// complete reads the filter flags.
func (c *common) complete(now time.Time) error {
	for _, r := range c.reasons {
		if !slices.Contains(forwarder.DeadLetterReasons(), r) {
			return fmt.Errorf("--reason %q: want one of %s", r, strings.Join(forwarder.DeadLetterReasons(), ", "))
		}
	}
	var err error
	c.filter.Reasons = c.reasons
	if c.filter.Since, err = timeFlag("--since", c.since, now); err != nil {
		return err
	}
	c.filter.Until, err = timeFlag("--until", c.until, now)
	return err
}

// timeFlag reads "2h" (that long ago) or an RFC 3339 time.
func timeFlag(name, v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(v); err == nil {
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q: want a time such as 2026-12-01T08:00:00Z or a duration ago such as 2h", name, v)
	}
	return t, nil
}

// open connects and opens the dead-letter stream.
func (c *common) open(ctx context.Context) (*deadletters.Stream, func(), error) {
	nc, closeNC, err := c.connector.Connect(ctx)
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		closeNC()
		return nil, nil, err
	}
	s, err := deadletters.Open(ctx, js, c.stream)
	if err != nil {
		closeNC()
		return nil, nil, err
	}
	return s, closeNC, nil
}

// NewCommand returns the dead-letters command, whose subcommands reach
// NATS through connector. name is how it is called, for the examples.
func NewCommand(streams genericiooptions.IOStreams, connector Connector, name string) *cobra.Command {
	c := &common{streams: streams, connector: connector, stream: forwarder.Defaults().NATS.DeadLetterStream}
	cmd := &cobra.Command{
		Use:   "dead-letters",
		Short: "List, show, drop or replay the events kept as dead letters",
		Long: `The forwarder keeps what it can never deliver as a dead letter, with its
reason: invalid_event (not a Falco event, or one no SOAR can store),
too_large, or phantom_rejected (SOAR refused this alert's content). Once
the cause is fixed, replay sends them back to be delivered; replaying an
invalid_event or too_large dead letter cannot help, so replay leaves them
unless --reason names them.`,
		Example: `  ` + name + ` list
  ` + name + ` list --reason phantom_rejected --since 24h -o json
  ` + name + ` show 17
  ` + name + ` replay
  ` + name + ` drop --reason invalid_event --until 72h`,
		Args: cobra.NoArgs,
	}
	connector.AddFlags(cmd.PersistentFlags())
	cmd.PersistentFlags().StringVar(&c.stream, "stream", c.stream, "the dead-letter stream")
	cmd.AddCommand(newList(c), newShow(c), newDrop(c), newReplay(c))
	return cmd
}

// NewReplayAlias is the forwarder's first replay command, kept working:
// "replay-dead-letters" is "dead-letters replay".
func NewReplayAlias(streams genericiooptions.IOStreams, connector Connector) *cobra.Command {
	c := &common{streams: streams, connector: connector, stream: forwarder.Defaults().NATS.DeadLetterStream}
	cmd := newReplay(c)
	cmd.Use, cmd.Hidden = "replay-dead-letters", true
	connector.AddFlags(cmd.Flags())
	cmd.Flags().StringVar(&c.stream, "stream", c.stream, "the dead-letter stream")
	return cmd
}

type listCmd struct {
	*common
	format output.Format
}

func newList(c *common) *cobra.Command {
	o := &listCmd{common: c}
	cmd := &cobra.Command{Use: "list", Short: "List the dead letters: reason, error, subject, size, when", Args: cobra.NoArgs, RunE: cmdmain.RunE(o)}
	c.addFilterFlags(cmd.Flags())
	output.AddFlag(cmd, &o.format)
	return cmd
}

func (o *listCmd) Complete(*cobra.Command, []string) error { return o.complete(time.Now()) }
func (o *listCmd) Validate() error                         { return o.format.Validate() }

func (o *listCmd) Run(ctx context.Context) error {
	s, closeNC, err := o.open(ctx)
	if err != nil {
		return err
	}
	defer closeNC()
	letters, err := s.List(ctx, o.filter)
	if err != nil {
		return err
	}
	return output.Print(o.streams.Out, o.format, letters, func(w io.Writer) error { return table(w, letters) })
}

func table(w io.Writer, letters []deadletters.Letter) error {
	if len(letters) == 0 {
		_, err := fmt.Fprintln(w, "no dead letters")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tRECEIVED\tREASON\tSIZE\tSUBJECT\tERROR")
	for _, l := range letters {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\n", l.Sequence, l.Received.UTC().Format(time.RFC3339), l.Reason, l.Size, cut(l.Subject, 60), cut(l.Error, 80))
	}
	return tw.Flush()
}

func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

type showCmd struct {
	*common
	format output.Format
	seq    uint64
}

func newShow(c *common) *cobra.Command {
	o := &showCmd{common: c}
	cmd := &cobra.Command{Use: "show SEQ", Short: "Show one dead letter whole, the event as it arrived", Args: cobra.ExactArgs(1), RunE: cmdmain.RunE(o)}
	output.AddFlag(cmd, &o.format)
	return cmd
}

func (o *showCmd) Complete(_ *cobra.Command, args []string) error {
	seq, err := strconv.ParseUint(args[0], 10, 64)
	if err != nil || seq == 0 {
		return fmt.Errorf("%q is not a dead letter's sequence number (see the list)", args[0])
	}
	o.seq = seq
	return nil
}

func (o *showCmd) Validate() error { return o.format.Validate() }

func (o *showCmd) Run(ctx context.Context) error {
	s, closeNC, err := o.open(ctx)
	if err != nil {
		return err
	}
	defer closeNC()
	l, err := s.Get(ctx, o.seq)
	if err != nil {
		return err
	}
	return output.Print(o.streams.Out, o.format, l, func(w io.Writer) error {
		fmt.Fprintf(w, "sequence:  %d\nreceived:  %s\nreason:    %s\nerror:     %s\nsubject:   %s\nsize:      %d bytes\n",
			l.Sequence, l.Received.UTC().Format(time.RFC3339Nano), l.Reason, l.Error, l.Subject, l.Size)
		if l.Truncated {
			fmt.Fprintf(w, "           (cut to %d bytes when it was dead-lettered)\n", len(l.Data))
		}
		fmt.Fprintln(w, "event:")
		var v any
		if json.Valid(l.Data) && json.Unmarshal(l.Data, &v) == nil {
			b, _ := json.MarshalIndent(v, "", "  ")
			_, err := fmt.Fprintf(w, "%s\n", b)
			return err
		}
		_, err := fmt.Fprintf(w, "%q\n", l.Data)
		return err
	})
}

type dropCmd struct {
	*common
	all  bool
	seqs []uint64
}

func newDrop(c *common) *cobra.Command {
	o := &dropCmd{common: c}
	cmd := &cobra.Command{
		Use:   "drop [SEQ...]",
		Short: "Remove dead letters for good: those given, or those the filter selects",
		Args:  cobra.ArbitraryArgs,
		RunE:  cmdmain.RunE(o),
	}
	c.addFilterFlags(cmd.Flags())
	cmd.Flags().BoolVar(&o.all, "all", false, "drop every dead letter (with the filter: every one it selects)")
	return cmd
}

func (o *dropCmd) Complete(_ *cobra.Command, args []string) error {
	for _, a := range args {
		seq, err := strconv.ParseUint(a, 10, 64)
		if err != nil || seq == 0 {
			return fmt.Errorf("%q is not a dead letter's sequence number (see the list)", a)
		}
		o.seqs = append(o.seqs, seq)
	}
	return o.complete(time.Now())
}

func (o *dropCmd) Validate() error {
	filtered := len(o.reasons) > 0 || o.since != "" || o.until != ""
	switch {
	case len(o.seqs) > 0 && (filtered || o.all):
		return fmt.Errorf("give sequence numbers, or a filter (--reason, --since, --until, --all), not both")
	case len(o.seqs) == 0 && !filtered && !o.all:
		return fmt.Errorf("say what to drop: sequence numbers, a filter (--reason, --since, --until), or --all")
	}
	return nil
}

func (o *dropCmd) Run(ctx context.Context) error {
	s, closeNC, err := o.open(ctx)
	if err != nil {
		return err
	}
	defer closeNC()
	if len(o.seqs) > 0 {
		for _, seq := range o.seqs {
			if err := s.DropOne(ctx, seq); err != nil {
				return err
			}
		}
		_, err := fmt.Fprintf(o.streams.Out, "dropped %d\n", len(o.seqs))
		return err
	}
	n, err := s.Drop(ctx, o.filter)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(o.streams.Out, "dropped %d\n", n)
	return err
}

type replayCmd struct {
	*common
	format output.Format
}

func newReplay(c *common) *cobra.Command {
	o := &replayCmd{common: c}
	cmd := &cobra.Command{
		Use:   "replay",
		Short: "Send dead letters back to be delivered again, once the cause is fixed",
		Long: `Send dead letters back to their original subjects, so that the event
stream stores them again and the forwarder delivers them. Each is removed
from the dead-letter stream once the event stream confirmed it. Replaying is
safe to repeat: delivery never creates duplicates. Without --reason, only
phantom_rejected dead letters are replayed: an invalid_event or too_large
one would only be dead-lettered again.`,
		Example: `  replay --reason phantom_rejected --since 2h`,
		Args:    cobra.NoArgs,
		RunE:    cmdmain.RunE(o),
	}
	c.addFilterFlags(cmd.Flags())
	output.AddFlag(cmd, &o.format)
	return cmd
}

func (o *replayCmd) Complete(*cobra.Command, []string) error {
	if err := o.complete(time.Now()); err != nil {
		return err
	}
	if len(o.filter.Reasons) == 0 {
		for _, r := range forwarder.DeadLetterReasons() {
			if !slices.Contains(deadletters.Useless, r) {
				o.filter.Reasons = append(o.filter.Reasons, r)
			}
		}
	}
	for _, r := range o.filter.Reasons {
		if slices.Contains(deadletters.Useless, r) {
			fmt.Fprintf(o.streams.ErrOut, "warning: replaying %s dead letters cannot help: the event itself is the problem, and it will be dead-lettered again\n", r)
		}
	}
	return nil
}

func (o *replayCmd) Validate() error { return o.format.Validate() }

func (o *replayCmd) Run(ctx context.Context) error {
	s, closeNC, err := o.open(ctx)
	if err != nil {
		return err
	}
	defer closeNC()
	res, err := s.Replay(ctx, o.filter)
	if perr := output.Print(o.streams.Out, o.format, res, func(w io.Writer) error { return printReplay(w, res) }); perr != nil && err == nil {
		err = perr
	}
	return err
}

// printReplay says what a replay did, and why it skipped what it skipped.
func printReplay(w io.Writer, res deadletters.ReplayResult) error {
	if res.Replayed == 0 && len(res.Skipped) == 0 && res.Left == 0 {
		_, err := fmt.Fprintln(w, "nothing to replay")
		return err
	}
	fmt.Fprintf(w, "replayed %d, skipped %d, left %d (not selected)\n", res.Replayed, len(res.Skipped), res.Left)
	for _, s := range res.Skipped {
		fmt.Fprintf(w, "  skipped dead letter %d (%s): %s; it stays in the dead-letter stream\n", s.Sequence, s.Reason, s.Why)
	}
	return nil
}
