// Package demo is the "demo" command: the whole pipeline on this machine.
package demo

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/falco-phantom/kubectl-falco-phantom/internal/cmdmain"
	"github.com/falco-phantom/kubectl-falco-phantom/internal/input"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/cmd/output"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/demo"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/forwarder"
)

type options struct {
	streams genericiooptions.IOStreams
	demo    demo.Options
	output  output.Format
}

// NewCommand returns the demo command. It needs no cluster: it takes the
// streams and the environment only.
func NewCommand(streams genericiooptions.IOStreams, getenv func(string) string) *cobra.Command {
	o := &options{streams: streams}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the whole pipeline on this machine, no cluster needed",
		Long: `Run the whole pipeline on this machine, with no cluster and no Docker: an
embedded NATS server with JetStream, the mock SOAR server and the forwarder.
A "Terminal shell in container" alert is published exactly as falcosidekick
publishes it, and the command waits until it is a case in SOAR, then prints
a timeline. With --serve everything keeps running so you can look at the
cases in a browser and publish more alerts.`,
		Example: `  # one alert, end to end, then exit
  kubectl falco-phantom demo

  # keep it running and open the printed URL
  kubectl falco-phantom demo --serve --data-dir ./demo-data`,
		Args: cobra.NoArgs,
		RunE: cmdmain.RunE(o),
	}
	cmd.Flags().BoolVar(&o.demo.Serve, "serve", false, "keep NATS, the forwarder and the mock SOAR running until interrupted")
	cmd.Flags().StringVar(&o.demo.DataDir, "data-dir", "", "folder for NATS and SOAR data (default: a temporary folder, removed at exit)")
	cmd.Flags().StringVar(&o.demo.SOARListen, "soar-listen", "127.0.0.1:0", "address of the mock SOAR and its web page")
	cmd.Flags().IntVar(&o.demo.NATSPort, "nats-port", 0, "NATS port (default: a free one)")
	cmd.Flags().DurationVar(&o.demo.Timeout, "timeout", 30*time.Second, "how long to wait for the case")
	output.AddFlag(cmd, &o.output)
	cmd.AddCommand(newPublishCommand(streams, getenv))
	return cmd
}

func (o *options) Complete(*cobra.Command, []string) error {
	if o.output == output.Table {
		o.demo.Progress = o.streams.ErrOut
	}
	return nil
}

func (o *options) Validate() error { return o.output.Validate() }

func (o *options) Run(ctx context.Context) error {
	printed := false
	print := func(r *demo.Result) {
		printed = true
		_ = output.Print(o.streams.Out, o.output, r, func(w io.Writer) error { return Timeline(w, r, o.demo.Serve) })
	}
	res, err := demo.Run(ctx, o.demo, print)
	if err != nil {
		return err
	}
	if !printed {
		print(res)
	}
	return nil
}

// Timeline writes the demo's result for people.
func Timeline(w io.Writer, r *demo.Result, serving bool) error {
	fmt.Fprintf(w, "\nTerminal shell in container -> NATS -> forwarder -> SOAR: the alert is a case.\n\n")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  WHEN\tSTEP\tDETAIL\n")
	fmt.Fprintf(tw, "  %s\tFalco event\t%s\n", r.EventTime.UTC().Format("15:04:05.000"), r.Subject)
	fmt.Fprintf(tw, "  +0s\tpublished to NATS\tas falcosidekick does\n")
	fmt.Fprintf(tw, "  +%s\tstored in SOAR\tcase %d, artifact %d\n", r.Latency.Round(time.Millisecond), r.CaseID, r.ArtifactID)
	fmt.Fprintf(tw, "  total\t%s\t\n", r.Latency.Round(time.Millisecond))
	if err := tw.Flush(); err != nil {
		return err
	}
	if serving {
		fmt.Fprintf(w, "\nMock SOAR web page: %s/  (user %q, password in %s)\n", r.SOARURL, demo.User, r.PasswordFile)
		fmt.Fprintf(w, "Cases over REST:    curl -su %s:\"$(cat %s)\" '%s/rest/container?page_size=0'\n", demo.User, r.PasswordFile, r.SOARURL)
		fmt.Fprintf(w, "Publish more:       kubectl falco-phantom demo publish --nats-url %s\n", r.NATSURL)
		fmt.Fprintf(w, "\nRunning until Ctrl-C.\n")
	} else {
		fmt.Fprintf(w, "\nRun with --serve to keep it running and look at the case in the mock SOAR web page.\n")
	}
	return nil
}

type publishOptions struct {
	streams genericiooptions.IOStreams
	natsURL string
	marker  string
	count   int
}

func newPublishCommand(streams genericiooptions.IOStreams, getenv func(string) string) *cobra.Command {
	o := &publishOptions{streams: streams, natsURL: input.Env(getenv, "NATS_URL", nats.DefaultURL), count: 1}
	cmd := &cobra.Command{
		Use:     "publish",
		Short:   "Publish a sample alert to NATS as falcosidekick does",
		Example: `  kubectl falco-phantom demo publish --nats-url nats://127.0.0.1:4222 --marker hello`,
		Args:    cobra.NoArgs,
		RunE:    cmdmain.RunE(o),
	}
	cmd.Flags().StringVar(&o.natsURL, "nats-url", o.natsURL, "NATS server URL [NATS_URL]")
	cmd.Flags().Lookup("nats-url").DefValue = forwarder.RedactURL(o.natsURL)
	cmd.Flags().StringVar(&o.marker, "marker", "", "text put into the command line of the alert")
	cmd.Flags().IntVar(&o.count, "count", 1, "how many alerts")
	return cmd
}

func (o *publishOptions) Complete(*cobra.Command, []string) error { return nil }

func (o *publishOptions) Validate() error {
	if o.count < 1 {
		return fmt.Errorf("--count %d: want at least 1", o.count)
	}
	return nil
}

func (o *publishOptions) Run(context.Context) error {
	nc, err := nats.Connect(o.natsURL, nats.Name("falco-phantom-demo-publish"))
	if err != nil {
		return forwarder.ConnectError(o.natsURL, err)
	}
	defer nc.Close()
	for i := range o.count {
		m := o.marker
		if m != "" && o.count > 1 {
			m = fmt.Sprintf("%s-%d", o.marker, i+1)
		}
		ev := demo.Event(m)
		if err := demo.Publish(nc, ev); err != nil {
			return err
		}
		fmt.Fprintf(o.streams.Out, "published %q on %s (event %s)\n", ev.Rule, ev.Subject(), ev.ID())
	}
	return nil
}
