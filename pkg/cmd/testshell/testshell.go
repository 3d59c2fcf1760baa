// Package testshell is the "test-shell" command.
package testshell

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/falco-phantom/kubectl-falco-phantom/internal/cmdmain"
	"github.com/falco-phantom/kubectl-falco-phantom/internal/input"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/cmd/cli"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/cmd/output"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/install"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/phantom"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/shelltest"
)

// DefaultImage is the image of the pod test-shell creates.
const DefaultImage = "docker.io/library/busybox:1.37"

type options struct {
	env    *cli.Env
	test   shelltest.Options
	output output.Format

	phantomURL, phantomUser string
	passwordFile, tokenFile string
	insecure                bool
	caFile                  string

	respond, probe string
	keepIsolated   bool
}

// Failed carries the outcome's exit code after the timeline is printed.
type Failed struct{ Result *shelltest.Result }

func (f *Failed) Error() string {
	return fmt.Sprintf("test-shell %s: %s", f.Result.Outcome, f.Result.Error)
}

// ExitCode is 2 (no alert in SOAR in time), 3 (exec failed), 4 (SOAR
// unreachable) or 6 (the response did not happen or hold).
func (f *Failed) ExitCode() int { return f.Result.Outcome.ExitCode() }

// NewCommand returns the test-shell command.
func NewCommand(env *cli.Env) *cobra.Command {
	o := &options{env: env}
	cmd := &cobra.Command{
		Use:   "test-shell",
		Short: "Open a shell in a container and prove its alert became a case in SOAR",
		Long: `Open a shell with a terminal in a container, which is what makes Falco raise
"Terminal shell in container", and wait until SOAR holds a case with that
alert. The shell's command line carries a unique marker, so its alert is told
apart from any other. A timeline is printed: shell opened, Falco's event,
stored in SOAR, and the total latency.

By default a short-lived pod is created (and deleted afterwards) in the
pipeline's namespace; --pod picks an existing one. SOAR is read the way
install configured it (the mock through the API server), or at --phantom-url.

With --respond isolate the test goes on to the response: the created pod (in
-n, default "default": the responder never acts in the pipeline's namespace)
must reach the responder's Service before the shell; then the case's
playbook must isolate it through the responder, its connection must be cut
while it keeps running, and once released by this command it must connect
again. The timeline shows each step and the time from the shell to the
isolated pod. It needs install --responder, and a playbook that isolates on
"Terminal shell in container" (install --mock-phantom --responder sets one).

Exit codes: 0 passed, 2 no alert in SOAR in time, 3 the shell could not be
opened, 4 SOAR unreachable, 5 the cluster unreachable, 6 the response did not
happen, did not hold, or could not be undone. On failure the command says which hop to look at
(Falco, falcosidekick, NATS, the forwarder, the responder) and what it found there.`,
		Example: `  kubectl falco-phantom test-shell
  kubectl falco-phantom test-shell -n shop --pod web-7c9f8d5b6-x2kqz -c nginx
  kubectl falco-phantom test-shell -o json | jq .latencyNanoseconds
  # the whole loop: shell -> Falco -> case -> playbook -> responder -> isolated pod
  kubectl falco-phantom test-shell --respond isolate
  # keep the shell open, like the original demo's kubectl exec -it ... sh
  kubectl falco-phantom test-shell --interactive`,
		Args: cobra.NoArgs,
		RunE: cmdmain.RunE(o),
	}
	f := cmd.Flags()
	t := &o.test
	f.StringVar(&t.Pod, "pod", "", "existing pod to open the shell in (default: create a short-lived pod)")
	f.StringVarP(&t.Container, "container", "c", "", "container of --pod (default: the first)")
	f.StringVar(&t.Image, "image", DefaultImage, "image of the created pod; it needs /bin/sh")
	f.BoolVar(&t.KeepPod, "keep-pod", false, "keep the created pod afterwards")
	f.DurationVar(&t.Timeout, "timeout", 60*time.Second, "how long to wait for the alert in SOAR")
	f.BoolVar(&t.Interactive, "interactive", false, "keep the shell open for you (needs a terminal)")
	f.StringVar(&t.InstallNamespace, "install-namespace", install.DefaultNamespace, "namespace of the pipeline (where install put it)")
	f.StringVar(&o.phantomURL, "phantom-url", "", "read this SOAR instead of the one install configured")
	f.StringVar(&o.phantomUser, "phantom-user", "", "SOAR user for --phantom-url (with --phantom-password-file or $PHANTOM_PASSWORD)")
	f.StringVar(&o.passwordFile, "phantom-password-file", "", "file holding the SOAR password")
	f.StringVar(&o.tokenFile, "phantom-token-file", "", "file holding a SOAR token (or $PHANTOM_TOKEN)")
	f.BoolVar(&o.insecure, "phantom-insecure-skip-tls-verify", false, "do not verify SOAR's certificate")
	f.StringVar(&o.caFile, "phantom-ca-file", "", "PEM file of CAs to trust for SOAR's certificate (--phantom-url)")
	f.StringVar(&o.respond, "respond", "", `also prove the response: "isolate" waits for the playbook to isolate the pod through the responder, checks that its connection is cut, then releases it`)
	f.StringVar(&o.probe, "respond-probe", "", "with --respond: the Service (NAMESPACE/NAME) the pod must reach before and not once isolated (default: the responder's own)")
	f.BoolVar(&o.keepIsolated, "keep-isolated", false, "with --respond: leave the pod isolated (with --keep-pod, for a look)")
	output.AddFlag(cmd, &o.output)
	return cmd
}

// Complete settles the namespaces: the created pod's (or --pod's) is -n,
// else the pipeline's.
func (o *options) Complete(*cobra.Command, []string) error {
	o.test.Namespace = o.env.NamespaceOr(o.test.InstallNamespace)
	if o.respond != "" {
		// The responder never acts in the pipeline's namespace.
		o.test.Namespace = o.env.NamespaceOr("default")
		rc := &shelltest.RespondCheck{ProbeNamespace: o.test.InstallNamespace, ProbeService: install.ReleaseResponder, KeepIsolated: o.keepIsolated}
		if o.probe != "" {
			ns, name, ok := strings.Cut(o.probe, "/")
			if !ok || ns == "" || name == "" {
				return fmt.Errorf("--respond-probe %q: write NAMESPACE/NAME of a Service", o.probe)
			}
			rc.ProbeNamespace, rc.ProbeService = ns, name
		}
		o.test.Respond = rc
	}
	o.test.In, o.test.Out = o.env.Streams.In, o.env.Streams.Out
	if o.output == output.Table {
		o.test.Progress = o.env.Streams.ErrOut
	}
	return nil
}

func (o *options) Validate() error {
	if o.respond != "" && o.respond != "isolate" {
		return fmt.Errorf("--respond %q: isolate is the response test-shell can prove", o.respond)
	}
	if o.respond == "" && (o.probe != "" || o.keepIsolated) {
		return fmt.Errorf("--respond-probe and --keep-isolated go with --respond isolate")
	}
	return o.output.Validate()
}

func (o *options) Run(ctx context.Context) error {
	c, err := o.env.Connect(ctx)
	if err != nil {
		return err
	}
	if o.test.SOAR, err = o.soar(ctx, c); err != nil {
		return err
	}
	res, err := (&shelltest.Tester{Kube: c.Kube, Config: c.Config}).Run(ctx, o.test)
	if err != nil {
		return err
	}
	if err := output.Print(o.env.Streams.Out, o.output, res, func(w io.Writer) error { return Timeline(w, res) }); err != nil {
		return err
	}
	if res.Outcome != shelltest.Passed {
		return &Failed{Result: res}
	}
	return nil
}

func (o *options) soar(ctx context.Context, c *cli.Cluster) (*shelltest.SOAR, error) {
	if o.phantomURL == "" {
		return shelltest.FindSOAR(ctx, c.Kube, c.Config, o.test.InstallNamespace)
	}
	auth := phantom.Auth{User: o.phantomUser, Password: o.env.Getenv("PHANTOM_PASSWORD"), Token: o.env.Getenv("PHANTOM_TOKEN")}
	for _, item := range []struct {
		flag, file string
		dst        *string
	}{{"--phantom-password-file", o.passwordFile, &auth.Password}, {"--phantom-token-file", o.tokenFile, &auth.Token}} {
		if item.file == "" {
			continue
		}
		secret, err := input.SecretFile(item.file)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", item.flag, err)
		}
		*item.dst = secret
	}
	if auth.Empty() {
		return nil, fmt.Errorf("--phantom-url needs credentials: --phantom-token-file, or --phantom-user with --phantom-password-file")
	}
	if o.insecure {
		fmt.Fprintln(o.env.Streams.ErrOut, "warning: --phantom-insecure-skip-tls-verify: SOAR's certificate is not verified, so anyone on the path can read the credentials")
	}
	var ca []byte
	if o.caFile != "" {
		b, err := os.ReadFile(o.caFile)
		if err != nil {
			return nil, fmt.Errorf("--phantom-ca-file: %w", err)
		}
		ca = b
	}
	client, err := shelltest.SOARClient(o.phantomURL, auth, o.insecure, ca)
	if err != nil {
		return nil, err
	}
	return &shelltest.SOAR{URL: o.phantomURL, Client: client}, nil
}

// responseRows are the timeline's rows of the response check.
func responseRows(tw io.Writer, rt *shelltest.ResponseTimeline, clock func(time.Time) string) {
	if rt.Isolated != nil {
		fmt.Fprintf(tw, "  %s\tpod isolated\tlabel falco-phantom.io/isolated=%s, NetworkPolicy %s\n", clock(*rt.Isolated), rt.IsolatedFor, rt.Policy)
		fmt.Fprintf(tw, "  total\t%s\tfrom the shell to the isolated pod\n", rt.Latency.Round(time.Millisecond))
	}
	if rt.Blocked != nil {
		running := "the pod still runs, for forensics"
		if !rt.StillRunning {
			running = "the pod no longer runs"
		}
		fmt.Fprintf(tw, "  %s\tconnection cut\t%s refused to the pod; %s\n", clock(*rt.Blocked), rt.Probe, running)
	}
	for _, n := range rt.Notes {
		fmt.Fprintf(tw, "  \tnote in the case\t%s\n", n)
	}
	if rt.Released != nil {
		fmt.Fprintf(tw, "  %s\treleased\tby this command\n", clock(*rt.Released))
	}
	if rt.Restored != nil {
		fmt.Fprintf(tw, "  %s\tconnection back\t%s reached again\n", clock(*rt.Restored), rt.Probe)
	}
}

// Timeline prints a result for people.
func Timeline(w io.Writer, r *shelltest.Result) error {
	verdict := "passed: the alert is a case in SOAR"
	if r.Response != nil {
		verdict = "passed: the alert is a case in SOAR, and its playbook isolated the pod"
	}
	if r.Outcome != shelltest.Passed {
		verdict = "FAILED (" + string(r.Outcome) + ")"
	}
	fmt.Fprintf(w, "\nTerminal shell in container -> Falco -> NATS -> forwarder -> SOAR: %s\n\n", verdict)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  WHEN\tSTEP\tDETAIL")
	clock := func(t time.Time) string { return t.UTC().Format("15:04:05.000") }
	if !r.ShellOpened.IsZero() {
		fmt.Fprintf(tw, "  %s\tshell opened\t%s/%s (container %s), marker %s\n", clock(r.ShellOpened), r.Namespace, r.Pod, r.Container, r.Marker)
	}
	if r.FalcoEvent != nil {
		fmt.Fprintf(tw, "  %s\tFalco event\tTerminal shell in container (Falco's clock)\n", clock(*r.FalcoEvent))
	}
	if r.Stored != nil {
		fmt.Fprintf(tw, "  %s\tstored in SOAR\tcase %d %q, artifact %d (SOAR's clock)\n", clock(*r.Stored), r.CaseID, r.CaseName, r.ArtifactID)
	}
	if r.Found != nil {
		fmt.Fprintf(tw, "  %s\tseen in SOAR\tby this command, at %s\n", clock(*r.Found), r.SOARURL)
		fmt.Fprintf(tw, "  total\t%s\tfrom the shell to the case\n", r.Latency.Round(time.Millisecond))
	}
	if rt := r.Response; rt != nil {
		responseRows(tw, rt, clock)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.Outcome == shelltest.Passed {
		return nil
	}
	fmt.Fprintf(w, "\nerror: %s\n", r.Error)
	if len(r.Diagnosis) > 0 {
		fmt.Fprintln(w, "\nWhere to look:")
		for _, d := range r.Diagnosis {
			fmt.Fprintf(w, "  - %s\n", d)
		}
	}
	return nil
}
