// Package demo is the "demo" command: the whole pipeline on this machine.
package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/falco-phantom/kubectl-falco-phantom/internal/cmdmain"
	"github.com/falco-phantom/kubectl-falco-phantom/internal/input"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/cmd/output"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/demo"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/falco"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/forwarder"
)

type options struct {
	streams  genericiooptions.IOStreams
	demo     demo.Options
	output   output.Format
	scenario string
	// name is how the command is called, for the hints it prints.
	name string
}

// Run runs the demo as a program of its own (falco-phantom-demo): the
// same command as "kubectl falco-phantom demo", with --version.
func Run(ctx context.Context, args []string, streams genericiooptions.IOStreams, getenv func(string) string) error {
	cmd := newCommand(streams, getenv, "falco-phantom-demo")
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	cmd.SetOut(streams.Out)
	cmd.SetErr(streams.ErrOut)
	cmdmain.SetVersion(cmd, "falco-phantom-demo")
	return cmdmain.Execute(ctx, cmd, args)
}

// NewCommand returns the demo command. It needs no cluster: it takes the
// streams and the environment only.
func NewCommand(streams genericiooptions.IOStreams, getenv func(string) string) *cobra.Command {
	return newCommand(streams, getenv, "kubectl falco-phantom demo")
}

func newCommand(streams genericiooptions.IOStreams, getenv func(string) string, name string) *cobra.Command {
	o := &options{streams: streams, name: name}
	use := "demo"
	if !strings.Contains(name, " ") {
		use = name
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: "Run the whole pipeline on this machine, no cluster needed",
		Long: `Run the whole pipeline on this machine, with no cluster and no Docker: an
embedded NATS server with JetStream, the mock SOAR server and the forwarder.
A "Terminal shell in container" alert is published exactly as falcosidekick
publishes it, and the command waits until it is a case in SOAR, then prints
a timeline. With --serve everything keeps running so you can look at the
cases in a browser and publish more alerts; the "attack" scenario is
published then (several pods, rules and severities), unless --scenario none.`,
		Example: `  # one alert, end to end, then exit
  ` + name + `

  # keep it running and open the printed URL
  ` + name + ` --serve --data-dir ./demo-data`,
		Args: cobra.NoArgs,
		RunE: cmdmain.RunE(o),
	}
	cmd.Flags().BoolVar(&o.demo.Serve, "serve", false, "keep NATS, the forwarder and the mock SOAR running until interrupted")
	cmd.Flags().StringVar(&o.demo.DataDir, "data-dir", "", "folder for NATS and SOAR data (default: a temporary folder, removed at exit)")
	cmd.Flags().StringVar(&o.demo.SOARListen, "soar-listen", "127.0.0.1:0", "address of the mock SOAR and its web page")
	cmd.Flags().IntVar(&o.demo.NATSPort, "nats-port", 0, "NATS port (default: a free one)")
	cmd.Flags().DurationVar(&o.demo.Timeout, "timeout", 30*time.Second, "how long to wait for the case")
	cmd.Flags().StringVar(&o.scenario, "scenario", "", "alerts published after the first case: "+strings.Join(demo.Scenarios, ", ")+" or none (default: attack with --serve, none without)")
	output.AddFlag(cmd, &o.output)
	cmd.AddCommand(newPublishCommand(streams, getenv, name))
	return cmd
}

func (o *options) Complete(cmd *cobra.Command, _ []string) error {
	if o.output == output.Table {
		o.demo.Progress = o.streams.ErrOut
	}
	switch {
	case o.scenario == "" && o.demo.Serve:
		o.demo.Scenario = "attack"
	case o.scenario != "none":
		o.demo.Scenario = o.scenario
	}
	return nil
}

func (o *options) Validate() error {
	if o.demo.Scenario != "" && !slices.Contains(demo.Scenarios, o.demo.Scenario) {
		return fmt.Errorf("--scenario %q: want %s or none", o.scenario, strings.Join(demo.Scenarios, ", "))
	}
	return o.output.Validate()
}

func (o *options) Run(ctx context.Context) error {
	printed := false
	print := func(r *demo.Result) {
		printed = true
		_ = output.Print(o.streams.Out, o.output, r, func(w io.Writer) error { return Timeline(w, r, o.demo.Serve, o.name) })
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

// Timeline writes the demo's result for people; name is how the demo is
// called, for the hint to publish more.
func Timeline(w io.Writer, r *demo.Result, serving bool, name string) error {
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
	if r.Scenario != "" {
		fmt.Fprintf(w, "\nThen the %q scenario: %d more alerts, several cases and severities.\n", r.Scenario, r.ScenarioAlerts)
	}
	if serving {
		fmt.Fprintf(w, "\nMock SOAR web page: %s/  (user %q, password in %s)\n", r.SOARURL, demo.User, r.PasswordFile)
		fmt.Fprintf(w, "Cases over REST:    curl -su %s:\"$(cat %s)\" '%s/rest/container?page_size=0'\n", demo.User, r.PasswordFile, r.SOARURL)
		fmt.Fprintf(w, "Publish more:       %s publish --nats-url %s --scenario attack\n", name, r.NATSURL)
		fmt.Fprintf(w, "\nRunning until Ctrl-C.\n")
	} else {
		fmt.Fprintf(w, "\nRun with --serve to keep it running and look at the case in the mock SOAR web page.\n")
	}
	return nil
}

type publishOptions struct {
	streams  genericiooptions.IOStreams
	natsURL  string
	marker   string
	count    int
	alert    demo.AlertSpec
	priority string
	file     string
	scenario string
	events   []*falco.Event
}

func newPublishCommand(streams genericiooptions.IOStreams, getenv func(string) string, name string) *cobra.Command {
	o := &publishOptions{streams: streams, natsURL: input.Env(getenv, "NATS_URL", nats.DefaultURL), count: 1}
	cmd := &cobra.Command{
		Use:   "publish",
		Short: "Publish alerts to NATS as falcosidekick does",
		Long: `Publish alerts to NATS exactly as falcosidekick does (a plain publish of
Falco's JSON on falco.<priority>.<rule>): one made-up alert of a rule the
demo knows (` + strings.Join(demo.Rules(), ", ") + `;
any other rule gets a plain alert), the events of a JSON file, or a scenario.`,
		Example: `  ` + name + ` publish --nats-url nats://127.0.0.1:4222 --command 'cat /etc/shadow' --rule 'Read sensitive file untrusted'
  ` + name + ` publish --scenario attack
  ` + name + ` publish --pod api-5d8b9c7f4-q7wzl --namespace payments --count 3
  ` + name + ` publish --file event.json`,
		Args: cobra.NoArgs,
		RunE: cmdmain.RunE(o),
	}
	f := cmd.Flags()
	f.StringVar(&o.natsURL, "nats-url", o.natsURL, "NATS server URL [NATS_URL]")
	f.Lookup("nats-url").DefValue = forwarder.RedactURL(o.natsURL)
	f.StringVar(&o.alert.Rule, "rule", demo.RuleShell, "the rule that fired")
	f.StringVar(&o.priority, "priority", "", "its priority (default: the rule's own)")
	f.StringVar(&o.alert.Namespace, "namespace", "", "namespace of the pod (default shop)")
	f.StringVar(&o.alert.Pod, "pod", "", "pod the alert is about (default web-7c9f8d5b6-x2kqz)")
	f.StringVar(&o.alert.Command, "command", "", "command line of the process (default: the rule's usual one)")
	f.StringVar(&o.marker, "marker", "", "with the shell rule and no --command: the command line is sh -c echo MARKER")
	f.IntVar(&o.count, "count", 1, "how many alerts (a number is added to each --marker)")
	f.StringVar(&o.file, "file", "", "publish the Falco events of this JSON file (one event, a list, or one per line)")
	f.StringVar(&o.scenario, "scenario", "", "publish a scenario: "+strings.Join(demo.Scenarios, ", "))
	_ = cmd.RegisterFlagCompletionFunc("rule", cobra.FixedCompletions(demo.Rules(), cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("scenario", cobra.FixedCompletions(demo.Scenarios, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// Complete builds the events to publish.
func (o *publishOptions) Complete(cmd *cobra.Command, _ []string) error {
	switch {
	case o.file != "":
		events, err := readEvents(o.file)
		if err != nil {
			return fmt.Errorf("--file: %w", err)
		}
		o.events = events
	case o.scenario != "":
		events, err := demo.Scenario(o.scenario, time.Now().UTC())
		if err != nil {
			return fmt.Errorf("--scenario: %w", err)
		}
		o.events = events
	default:
		if o.priority != "" {
			p, err := falco.ParsePriority(o.priority)
			if err != nil {
				return fmt.Errorf("--priority: %w", err)
			}
			o.alert.Priority = p
		}
		for i := range o.count {
			a := o.alert
			if a.Command == "" && o.marker != "" {
				m := o.marker
				if o.count > 1 {
					m = fmt.Sprintf("%s-%d", o.marker, i+1)
				}
				a.Command = "sh -c echo " + m
			}
			o.events = append(o.events, demo.Alert(a))
		}
	}
	return nil
}

func (o *publishOptions) Validate() error {
	switch {
	case o.count < 1:
		return fmt.Errorf("--count %d: want at least 1", o.count)
	case o.file != "" && o.scenario != "":
		return fmt.Errorf("--file and --scenario exclude each other")
	}
	return nil
}

func (o *publishOptions) Run(context.Context) error {
	nc, err := nats.Connect(o.natsURL, nats.Name("falco-phantom-demo-publish"))
	if err != nil {
		return forwarder.ConnectError(o.natsURL, err)
	}
	defer nc.Close()
	for _, ev := range o.events {
		if err := demo.Publish(nc, ev); err != nil {
			return err
		}
		fmt.Fprintf(o.streams.Out, "published %q (%s) on %s (event %s)\n", ev.Rule, ev.Priority, ev.Subject(), ev.ID())
	}
	return nil
}

// readEvents reads Falco events from a file: one JSON object, a list of
// them, or one per line. Each must be a valid Falco event.
func readEvents(path string) ([]*falco.Event, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var raws []json.RawMessage
	if trimmed := bytes.TrimSpace(b); len(trimmed) > 0 && trimmed[0] == '[' {
		if err := json.Unmarshal(trimmed, &raws); err != nil {
			return nil, fmt.Errorf("%s: not a list of events: %w", path, err)
		}
	} else {
		dec := json.NewDecoder(bytes.NewReader(b))
		for {
			var raw json.RawMessage
			if err := dec.Decode(&raw); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			raws = append(raws, raw)
		}
	}
	if len(raws) == 0 {
		return nil, fmt.Errorf("%s holds no event", path)
	}
	events := make([]*falco.Event, len(raws))
	for i, raw := range raws {
		ev, err := falco.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: event %d: %w", path, i+1, err)
		}
		events[i] = ev
	}
	return events, nil
}
