// Package install is the "install" command, and "playbook deploy", the
// original deploy_playbook command line mapped onto it.
package install

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/falco-phantom/kubectl-falco-phantom/internal/cmdmain"
	"github.com/falco-phantom/kubectl-falco-phantom/internal/fields"
	"github.com/falco-phantom/kubectl-falco-phantom/internal/input"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/cmd/cli"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/helm"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/install"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/kubeless"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/respond"
)

type options struct {
	env    *cli.Env
	o      install.Options
	dryRun bool
	// flagOf names an option's field as the command line gave it.
	flagOf func(field string) string

	flags                           *pflag.FlagSet
	natsChart, falcoChart           string
	natsChartVersion, falcoChartVer string
	natsRepo, falcoRepo             string
	subjects                        []string
	phantomUser                     string
	phantomPassword, phantomToken   string
	passwordFile, tokenFile         string
	caFile                          string
	natsCredsFile                   string
	responderNamespaces             []string
	responderActions                []string
}

// NewCommand returns the install command.
func NewCommand(env *cli.Env) *cobra.Command {
	o := &options{env: env, o: install.Defaults()}
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Install Falco, NATS and the forwarder (and optionally a mock SOAR) on the cluster",
		Long: `Install the whole pipeline on the current context with Helm (no helm binary needed):

  NATS with JetStream        official chart ` + install.DefaultNATSChart.Version + ` (or an existing NATS: --nats-url)
  the mock SOAR              with --mock-phantom (try it without a licence)
  the forwarder              this project's chart: NATS -> SOAR, one case per incident
  the responder              with --responder: the HTTPS service SOAR playbooks call to act on the cluster
  Falco with falcosidekick   official chart ` + install.DefaultFalcoChart.Version + `, publishing to NATS (or --skip-falco)

Running it again upgrades in place. Everything goes to the namespace given
with -n (default ` + install.DefaultNamespace + `). SOAR credentials are stored in a Secret and
never printed; prefer the *-file flags or an existing Secret, since flag
values show in the process list.`,
		Example: `  # try everything, with the mock SOAR
  kubectl falco-phantom install --mock-phantom

  # a real SOAR with an automation token kept in a file
  kubectl falco-phantom install --phantom-url https://soar.example.com --phantom-token-file ./token

  # the original subjects, an existing NATS and an existing Falco
  kubectl falco-phantom install --phantom-url https://soar.example.com --phantom-secret soar-creds \
      --nats-url nats://nats.messaging.svc:4222 --skip-falco --subject 'falco.*.*'

  # offline: charts from files, images from a private registry
  kubectl falco-phantom install --mock-phantom --nats-chart ./nats-2.14.2.tgz \
      --falco-chart ./falco-9.1.0.tgz --image-registry registry.internal:5000

  # the responder too, acting in two namespaces; the mock isolates the pod of every shell case
  kubectl falco-phantom install --mock-phantom --responder --responder-namespaces shop,web

  # see what would be applied
  kubectl falco-phantom install --mock-phantom --dry-run`,
		Args: cobra.NoArgs,
		RunE: cmdmain.RunE(o),
	}
	f := cmd.Flags()
	v := &o.o
	f.BoolVar(&v.MockPhantom, "mock-phantom", false, "install the mock SOAR and point the forwarder at it")
	f.BoolVar(&v.MockPersistence, "mock-phantom-persistence", v.MockPersistence, "keep the mock's cases on a PersistentVolumeClaim")
	f.StringVar(&v.PhantomURL, "phantom-url", "", "SOAR base URL, e.g. https://soar.example.com")
	f.StringVar(&o.phantomUser, "phantom-user", "", "SOAR user (with --phantom-password-file)")
	f.StringVar(&o.passwordFile, "phantom-password-file", "", "file holding the SOAR password")
	f.StringVar(&o.tokenFile, "phantom-token-file", "", "file holding a SOAR automation token")
	f.StringVar(&o.phantomPassword, "phantom-password", "", "SOAR password (visible in the process list: prefer --phantom-password-file or $PHANTOM_PASSWORD)")
	f.StringVar(&o.phantomToken, "phantom-token", "", "SOAR token (visible in the process list: prefer --phantom-token-file or $PHANTOM_TOKEN)")
	f.StringVar(&v.PhantomSecret, "phantom-secret", "", "existing Secret in the namespace with the keys user and password, or token")
	f.BoolVar(&v.InsecureSkipTLSVerify, "insecure-skip-tls-verify", false, "do not verify SOAR's TLS certificate (VERIFY_SSL=false); on this command the flag is about SOAR, not the API server")
	f.StringVar(&o.caFile, "phantom-ca-file", "", "PEM file of CA certificates to trust for SOAR's certificate")
	f.StringVar(&o.natsCredsFile, "nats-creds-file", "", "NATS credentials file for the forwarder to reach --nats-url (stored in a Secret)")
	f.StringVar(&v.PhantomLabel, "phantom-label", v.PhantomLabel, "label of the cases; it must exist in SOAR")
	f.StringVar(&v.NATSURL, "nats-url", "", "use this existing NATS instead of installing one")
	f.IntVar(&v.NATSReplicas, "nats-replicas", v.NATSReplicas, "NATS servers: 1 for a lab, 3 for production (a JetStream cluster)")
	f.StringArrayVar(&v.NATSSet, "nats-set", nil, "extra NATS chart value key=value, over install's own (repeatable; JetStream stays on)")
	f.StringVar(&o.natsChart, "nats-chart", "", "NATS chart: a local folder or .tgz, or an oci:// reference (offline clusters)")
	f.StringVar(&o.natsChartVersion, "nats-chart-version", "", "NATS chart version (default "+install.DefaultNATSChart.Version+")")
	f.StringVar(&o.natsRepo, "nats-chart-repo", install.DefaultNATSChart.RepoURL, "chart repository of NATS (e.g. an internal mirror)")
	f.BoolVar(&v.SkipFalco, "skip-falco", false, "do not install Falco (it already runs and publishes to NATS)")
	f.StringVar(&v.FalcoDriver, "falco-driver", v.FalcoDriver, "Falco driver: auto, modern_ebpf or kmod")
	f.StringArrayVar(&v.FalcoSet, "falco-set", nil, "extra Falco chart value key=value, over install's own (repeatable)")
	f.StringVar(&o.falcoChart, "falco-chart", "", "Falco chart: a local folder or .tgz, or an oci:// reference (offline clusters)")
	f.StringVar(&o.falcoChartVer, "falco-chart-version", "", "Falco chart version (default "+install.DefaultFalcoChart.Version+")")
	f.StringVar(&o.falcoRepo, "falco-chart-repo", install.DefaultFalcoChart.RepoURL, "chart repository of Falco (e.g. an internal mirror)")
	f.StringArrayVar(&o.subjects, "subject", nil, "NATS subject the forwarder consumes (default falco.>; the original falco.*.* works); with --runtime kubeless, repeat it for one trigger each")
	f.StringVar((*string)(&v.Runtime), "runtime", string(v.Runtime), "how the forwarder runs: default (a Deployment consuming NATS JetStream) or kubeless (a Kubeless Function behind NATSTriggers, the original shape)")
	f.BoolVar(&v.InstallKubeless, "install-kubeless", false, "with --runtime kubeless, also deploy Kubeless's controllers (only possible on Kubernetes older than 1.22)")
	f.StringArrayVar(&v.KubelessManifests, "kubeless-manifest", v.KubelessManifests, "Kubeless release manifests (file or URL) for --install-kubeless")
	f.IntVar(&v.ForwarderReplicas, "forwarder-replicas", v.ForwarderReplicas, "forwarder replicas (they share one durable consumer)")
	f.DurationVar(&v.GroupWindow, "group-window", v.GroupWindow, "alerts of one rule in one container within this time share a case; 0 = a case per alert")
	f.BoolVar(&v.KEDA, "keda", false, "scale the forwarder with the NATS backlog, down to zero (needs KEDA)")
	f.BoolVar(&v.Responder, "responder", false, "install the responder, the HTTPS service SOAR playbooks call to act on the cluster (docs/respond.md)")
	f.StringSliceVar(&o.responderNamespaces, "responder-namespaces", v.ResponderNamespaces, "namespaces the responder may act in, comma separated, or * for all but the install namespace and kube-system")
	f.StringSliceVar(&o.responderActions, "responder-actions", actionNames(v.ResponderActions), "actions the responder allows, comma separated, of "+strings.Join(actionNames(respond.Actions()), ", "))
	f.StringVar(&v.ResponderTLSSecret, "responder-tls-secret", "", "existing Secret with tls.crt, tls.key and ca.crt for the responder, instead of the CA and certificate install generates")
	f.StringVar(&v.ImageRegistry, "image-registry", "", "pull every image from this registry (a private mirror)")
	f.StringVar(&v.ImageTag, "image-tag", v.ImageTag, "tag of the forwarder and mock SOAR images")
	f.BoolVar(&o.dryRun, "dry-run", false, "print every manifest that would be applied (secrets redacted) and change nothing")
	f.BoolVar(&v.Wait, "wait", v.Wait, "wait for each component to be ready, showing progress")
	f.DurationVar(&v.Timeout, "timeout", v.Timeout, "how long to wait for each component")
	_ = cmd.RegisterFlagCompletionFunc("falco-driver", cobra.FixedCompletions([]string{"auto", "modern_ebpf", "kmod"}, cobra.ShellCompDirectiveNoFileComp))
	o.flags = f
	o.flagOf = o.flagName
	return cmd
}

// flagName is the flag of an Options field, as this command line gave it.
func (o *options) flagName(field string) string {
	changed := func(name string) bool { return o.flags.Changed(name) }
	switch field {
	case "PhantomAuth.Password":
		if changed("phantom-password") {
			return "--phantom-password"
		}
		if !changed("phantom-password-file") && (o.o.PhantomAuth.Password != "" || o.o.PhantomAuth.User != "") {
			return "--phantom-password"
		}
		return "--phantom-password-file"
	case "PhantomAuth.Token":
		if changed("phantom-token") || (!changed("phantom-token-file") && o.o.PhantomAuth.Token != "") {
			return "--phantom-token"
		}
		return "--phantom-token-file"
	}
	if name, ok := installFlags[field]; ok {
		return name
	}
	return field
}

// installFlags names the flag of each Options field.
var installFlags = map[string]string{
	"Namespace": "--namespace", "NATSURL": "--nats-url", "NATSReplicas": "--nats-replicas", "NATSChart": "--nats-chart",
	"NATSCreds": "--nats-creds-file", "NATSSet": "--nats-set", "SkipFalco": "--skip-falco", "FalcoDriver": "--falco-driver", "FalcoSet": "--falco-set",
	"FalcoChart": "--falco-chart", "MockPhantom": "--mock-phantom", "MockPersistence": "--mock-phantom-persistence",
	"PhantomURL": "--phantom-url", "PhantomAuth.User": "--phantom-user", "PhantomSecret": "--phantom-secret",
	"InsecureSkipTLSVerify": "--insecure-skip-tls-verify", "PhantomCA": "--phantom-ca-file", "PhantomLabel": "--phantom-label",
	"Subjects": "--subject", "ForwarderReplicas": "--forwarder-replicas", "GroupWindow": "--group-window", "KEDA": "--keda",
	"Runtime": "--runtime", "InstallKubeless": "--install-kubeless", "KubelessManifests": "--kubeless-manifest",
	"ImageRegistry": "--image-registry", "ImageTag": "--image-tag", "Wait": "--wait", "Timeout": "--timeout",
	"Responder": "--responder", "ResponderNamespaces": "--responder-namespaces", "ResponderActions": "--responder-actions",
	"ResponderTLSSecret": "--responder-tls-secret",
}

func actionNames(as []respond.Action) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = string(a)
	}
	return out
}

// Complete turns the flags into install options: the namespace, chart
// overrides, subjects and the credentials from files or the environment.
func (o *options) Complete(cmd *cobra.Command, _ []string) error {
	v := &o.o
	v.Namespace = o.env.Namespace()
	if len(o.subjects) > 0 {
		v.Subjects = o.subjects
	}
	v.ResponderNamespaces = trimmed(o.responderNamespaces)
	v.ResponderActions = nil
	for _, a := range trimmed(o.responderActions) {
		v.ResponderActions = append(v.ResponderActions, respond.Action(a))
	}
	v.NATSChart = chartSource(install.DefaultNATSChart, o.natsChart, o.natsChartVersion, o.natsRepo)
	v.FalcoChart = chartSource(install.DefaultFalcoChart, o.falcoChart, o.falcoChartVer, o.falcoRepo)
	errOut := o.env.Streams.ErrOut
	if o.phantomPassword != "" || o.phantomToken != "" {
		fmt.Fprintln(errOut, "warning: --phantom-password/--phantom-token are visible to other users in the process list; prefer the -file flags or $PHANTOM_PASSWORD/$PHANTOM_TOKEN")
	}
	if v.InsecureSkipTLSVerify && !v.MockPhantom {
		fmt.Fprintln(errOut, "warning: --insecure-skip-tls-verify: the forwarder will not verify SOAR's certificate, so anyone on the path can read and change the credentials and alerts; prefer --phantom-ca-file")
	}
	if strings.HasPrefix(strings.ToLower(v.PhantomURL), "http://") {
		fmt.Fprintln(errOut, "warning: --phantom-url is plain http: the SOAR credentials and the alerts cross the network in clear; use https")
	}
	password, err := secretFrom(o.phantomPassword, o.passwordFile, o.env.Getenv("PHANTOM_PASSWORD"), "--phantom-password-file")
	if err != nil {
		return err
	}
	token, err := secretFrom(o.phantomToken, o.tokenFile, o.env.Getenv("PHANTOM_TOKEN"), "--phantom-token-file")
	if err != nil {
		return err
	}
	if v.MockPhantom && !cmd.Flags().Changed("phantom-password") && !cmd.Flags().Changed("phantom-token") && o.passwordFile == "" && o.tokenFile == "" {
		// Variables meant for a real SOAR do not conflict with the mock.
		password, token = "", ""
	}
	v.PhantomAuth.User, v.PhantomAuth.Password, v.PhantomAuth.Token = o.phantomUser, password, token
	if o.caFile != "" {
		pem, err := os.ReadFile(o.caFile)
		if err != nil {
			return fmt.Errorf("--phantom-ca-file: %w", err)
		}
		if !strings.Contains(string(pem), "-----BEGIN CERTIFICATE-----") {
			return fmt.Errorf("--phantom-ca-file: %s holds no PEM certificate", o.caFile)
		}
		v.PhantomCA = pem
	}
	if o.natsCredsFile != "" {
		creds, err := os.ReadFile(o.natsCredsFile)
		if err != nil {
			return fmt.Errorf("--nats-creds-file: %w", err)
		}
		if len(strings.TrimSpace(string(creds))) == 0 {
			return fmt.Errorf("--nats-creds-file: %s is empty", o.natsCredsFile)
		}
		v.NATSCreds = creds
	}
	return nil
}

// trimmed drops the spaces and empty entries of a list flag.
func trimmed(list []string) []string {
	return input.List(strings.Join(list, ","))
}

// chartSource applies the chart flags: a local path or oci:// reference
// replaces the repository chart; otherwise the repository and version
// may be overridden.
func chartSource(def helm.Chart, ref, version, repo string) helm.Chart {
	if ref != "" {
		return helm.Chart{Ref: ref, Version: version}
	}
	if version != "" {
		def.Version = version
	}
	def.RepoURL = repo
	return def
}

// secretFrom takes a secret from a flag, a file or the environment, in
// that order.
func secretFrom(flagValue, file, env, fileFlag string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if file != "" {
		s, err := input.SecretFile(file)
		if err != nil {
			return "", fmt.Errorf("%s: %w", fileFlag, err)
		}
		return s, nil
	}
	return env, nil
}

// Validate checks the options, naming the flags at fault.
func (o *options) Validate() error { return fields.Rename(o.o.Validate(), o.flagOf) }

// Run installs, or with --dry-run prints what install would apply.
func (o *options) Run(ctx context.Context) error {
	return apply(ctx, o.env, o.o, o.dryRun, o.flagOf)
}

// apply plans the options and applies the plan, or prints it: install and
// playbook deploy end here. flagOf says the options' fields as flags.
func apply(ctx context.Context, env *cli.Env, o install.Options, dryRun bool, flagOf func(string) string) error {
	streams := env.Streams
	if dryRun {
		// Planning and rendering need no cluster.
		p, err := install.NewPlan(ctx, o, install.Offline)
		if err != nil {
			return fields.Rename(err, flagOf)
		}
		in := &install.Installer{Helm: helm.New(env.Kube, nil)}
		out, err := in.Render(ctx, p)
		if err != nil {
			return fields.Rename(err, flagOf)
		}
		_, err = io.WriteString(streams.Out, out)
		return err
	}
	c, err := env.Connect(ctx)
	if err != nil {
		return err
	}
	in := c.Installer(streams.ErrOut)
	if err := in.Preflight(ctx, o); err != nil {
		return fmt.Errorf("%s: %w", c.Host, fields.Rename(err, flagOf))
	}
	p, err := install.NewPlan(ctx, o, install.Online(c.Kube))
	if err != nil {
		return fields.Rename(err, flagOf)
	}
	res, err := in.Apply(ctx, p)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return errors.New("interrupted; run install again to finish (it upgrades in place), or uninstall")
		}
		return fields.Rename(err, flagOf)
	}
	return summary(streams.Out, res, o)
}

func summary(w io.Writer, res *install.Result, o install.Options) error {
	fmt.Fprintf(w, "\nfalco-phantom is installed in namespace %s (%s).\n\n", res.Namespace, res.Took.Round(1e9))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  RELEASE\tCHART\tSTATUS\tREVISION")
	for _, r := range res.Releases {
		fmt.Fprintf(tw, "  %s\t%s-%s\t%s\t%d\n", r.Name, r.Chart, r.ChartVersion, r.Status, r.Revision)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nAlerts flow: falcosidekick -> %s -> forwarder -> %s\n", res.NATSURL, res.PhantomURL)
	fmt.Fprintf(w, "Check it:    kubectl falco-phantom status -n %s\n", res.Namespace)
	// test-shell's -n is where its pod goes; the pipeline's namespace is
	// --install-namespace.
	if res.Namespace == install.DefaultNamespace {
		fmt.Fprintf(w, "Prove it:    kubectl falco-phantom test-shell\n")
	} else {
		fmt.Fprintf(w, "Prove it:    kubectl falco-phantom test-shell --install-namespace %s\n", res.Namespace)
	}
	if o.Runtime == install.RuntimeKubeless {
		fmt.Fprintf(w, "Kubeless:    Function %s and its NATSTriggers in %s (see docs/kubeless.md)\n", kubeless.FunctionName, res.Namespace)
	}
	if o.Responder {
		fmt.Fprintf(w, "Responder:   %s/v1/actions/<action> (docs/respond.md), acting in %s\n", install.ResponderURL(res.Namespace), strings.Join(o.ResponderNamespaces, ","))
		fmt.Fprintf(w, "             token: kubectl -n %s get secret %s -o jsonpath='{.data.token}' | base64 -d\n", res.Namespace, install.SecretResponderToken)
		if o.MockPhantom && slices.Contains(o.ResponderActions, respond.Isolate) {
			fmt.Fprintf(w, "             the mock SOAR's playbook %q isolates the pod of every new shell case\n", install.MockIsolatePlaybook)
		}
	}
	if o.MockPhantom {
		fmt.Fprintf(w, "Mock SOAR:   kubectl -n %s port-forward svc/%s %d, then open http://127.0.0.1:%d/\n", res.Namespace, install.ReleaseMock, install.MockPhantomPort, install.MockPhantomPort)
		fmt.Fprintf(w, "             user admin, password: kubectl -n %s get secret %s -o jsonpath='{.data.password}' | base64 -d\n", res.Namespace, install.SecretMock)
	}
	return nil
}
