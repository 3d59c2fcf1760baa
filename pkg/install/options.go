// Package install puts the pipeline on a cluster (NATS, Falco with
// falcosidekick, the forwarder, optionally the mock SOAR), upgrades it in
// place, and removes it again. Helm is reached only through pkg/helm.
package install

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/forwarder"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/images"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/phantom"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/version"
)

// Names of what install creates.
const (
	DefaultNamespace = "falco-phantom"
	ReleaseNATS      = "nats"
	ReleaseFalco     = "falco"
	ReleaseForwarder = "falco-phantom-forwarder"
	ReleaseMock      = "mockphantom"
	// SecretSOAR holds the forwarder's SOAR credentials.
	SecretSOAR = "falco-phantom-soar"
	// SecretMock holds the credentials the mock SOAR accepts.
	SecretMock = "mockphantom-credentials"
	// SecretSOARCA holds the CA certificates to trust for SOAR.
	SecretSOARCA = "falco-phantom-soar-ca"
	// SecretNATSCreds holds the forwarder's NATS credentials file.
	SecretNATSCreds = "falco-phantom-nats-creds"
	// StateConfigMap records what install created (never secrets), so that
	// uninstall removes exactly that and status knows what to check.
	StateConfigMap = "falco-phantom-install"

	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "kubectl-falco-phantom"
)

// Pinned upstream charts (REFERENCE: Falco chart 9.x ships Falco 0.44,
// NATS chart 2.14.x).
var (
	DefaultNATSChart  = ChartSource{Ref: "nats", RepoURL: "https://nats-io.github.io/k8s/helm/charts/", Version: "2.14.2"}
	DefaultFalcoChart = ChartSource{Ref: "falco", RepoURL: "https://falcosecurity.github.io/charts", Version: "9.1.0"}
)

// ChartSource is where an upstream chart comes from.
type ChartSource struct {
	// Ref is a chart name in RepoURL, a local path (folder or .tgz), or an
	// oci:// reference.
	Ref     string
	RepoURL string
	Version string
}

// Options is what the user asked for.
type Options struct {
	Namespace string

	// NATSURL points at an existing NATS; empty installs NATS.
	NATSURL      string
	NATSReplicas int
	NATSChart    ChartSource

	// SkipFalco leaves Falco alone (it already runs and publishes to NATS).
	SkipFalco   bool
	FalcoDriver string
	FalcoSet    []string
	FalcoChart  ChartSource

	// MockPhantom installs the mock SOAR and points the forwarder at it.
	MockPhantom bool
	// MockPersistence keeps the mock's data on a PersistentVolumeClaim.
	MockPersistence bool
	PhantomURL      string
	// PhantomAuth are credentials given on the command line or in files.
	PhantomAuth phantom.Auth
	// PhantomSecret names an existing Secret with the credentials (keys
	// user and password, or token).
	PhantomSecret string
	// secretHasToken: the PhantomSecret holds a token (found by Install).
	secretHasToken        bool
	InsecureSkipTLSVerify bool
	// NATSCreds is a NATS credentials file for the NATS at NATSURL (from
	// --nats-creds-file).
	NATSCreds []byte
	// PhantomCA is PEM CA certificates to trust for SOAR (from --phantom-ca-file).
	PhantomCA    []byte
	PhantomLabel string

	Subject string
	// Subjects are the Kubeless runtime's trigger topics (one trigger
	// each); empty means Subject.
	Subjects          []string
	ForwarderReplicas int
	GroupWindow       time.Duration
	KEDA              bool

	// Runtime is RuntimeDefault or RuntimeKubeless.
	Runtime string
	// InstallKubeless also deploys Kubeless's controllers (only where they
	// can run), from KubelessManifests.
	InstallKubeless   bool
	KubelessManifests []string

	// ImageRegistry replaces the registry of every image (offline clusters).
	ImageRegistry string
	// ImageTag is the tag of this project's images; default the plugin's version.
	ImageTag string

	DryRun  bool
	Wait    bool
	Timeout time.Duration
}

// Defaults returns the default options.
func Defaults() Options {
	return Options{
		Namespace: DefaultNamespace, NATSReplicas: 1, NATSChart: DefaultNATSChart, FalcoDriver: "auto",
		FalcoChart: DefaultFalcoChart, MockPersistence: true, PhantomLabel: "events", Subject: "falco.>",
		ForwarderReplicas: 1, GroupWindow: 5 * time.Minute, ImageTag: version.Version, Wait: true, Timeout: 5 * time.Minute,
		Runtime: RuntimeDefault, KubelessManifests: DefaultKubelessManifests,
	}
}

// Validate checks the options; errors name the flags in conflict.
func (o *Options) Validate() error {
	var errs []string
	add := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if o.MockPhantom {
		if o.PhantomURL != "" || !o.PhantomAuth.Empty() || o.PhantomSecret != "" {
			add("--mock-phantom installs its own SOAR: do not combine it with --phantom-url, --phantom-user/--phantom-password, --phantom-token or --phantom-secret")
		}
	} else {
		if o.PhantomURL == "" {
			add("say where SOAR is: --phantom-url https://soar.example.com, or --mock-phantom to install the mock")
		} else if _, err := phantom.ParseBaseURL(o.PhantomURL); err != nil {
			add("--phantom-url: %v", err)
		}
		switch {
		case o.PhantomSecret != "" && !o.PhantomAuth.Empty():
			add("--phantom-secret and --phantom-user/--phantom-password/--phantom-token exclude each other")
		case o.PhantomSecret == "" && o.PhantomAuth.Empty():
			add("SOAR credentials are missing: --phantom-token-file, --phantom-user with --phantom-password-file, or --phantom-secret NAME")
		case o.PhantomAuth.Token != "" && (o.PhantomAuth.User != "" || o.PhantomAuth.Password != ""):
			add("--phantom-token and --phantom-user/--phantom-password exclude each other")
		case o.PhantomAuth.Token == "" && o.PhantomSecret == "" && (o.PhantomAuth.User == "" || o.PhantomAuth.Password == ""):
			add("--phantom-user and --phantom-password go together")
		}
	}
	if len(o.PhantomCA) > 0 && (o.MockPhantom || o.InsecureSkipTLSVerify) {
		add("--phantom-ca-file goes with a real SOAR whose certificate is verified (not with --mock-phantom or --insecure-skip-tls-verify)")
	}
	if o.InsecureSkipTLSVerify && o.MockPhantom {
		add("--insecure-skip-tls-verify has no effect with --mock-phantom (it speaks plain HTTP inside the cluster)")
	}
	if len(o.NATSCreds) > 0 && o.NATSURL == "" {
		add("--nats-creds-file goes with --nats-url (the NATS this command installs needs no credentials)")
	}
	if o.NATSURL != "" {
		// Never quoted: it may hold a password.
		u, err := url.Parse(o.NATSURL)
		switch {
		case strings.Contains(o.NATSURL, "@"):
			add("--nats-url must not hold credentials: they would be stored in clear in the forwarder's Deployment and the install record; give them with --nats-creds-file")
		case err != nil || (u.Scheme != "nats" && u.Scheme != "tls") || u.Host == "":
			add("--nats-url: want nats://host:4222 or tls://host:4222")
		}
		if o.NATSReplicas != 1 {
			add("--nats-replicas applies to the NATS this command installs, not to --nats-url")
		}
	}
	if o.NATSReplicas != 1 && o.NATSReplicas != 3 && o.NATSReplicas != 5 {
		add("--nats-replicas %d: want 1 (a lab), or 3 or 5 (a JetStream cluster)", o.NATSReplicas)
	}
	if !slices.Contains([]string{"auto", "modern_ebpf", "kmod"}, o.FalcoDriver) {
		add("--falco-driver %q: want auto, modern_ebpf or kmod (ebpf was removed in Falco chart 9)", o.FalcoDriver)
	}
	if o.SkipFalco && (len(o.FalcoSet) > 0 || o.FalcoDriver != "auto") {
		add("--skip-falco: --falco-driver and --falco-set have nothing to configure")
	}
	for _, s := range o.FalcoSet {
		if !strings.Contains(s, "=") {
			add("--falco-set %q: want key=value", s)
		}
	}
	switch o.Runtime {
	case RuntimeDefault:
		if len(o.Subjects) > 1 {
			add("--subject was given %d times: the forwarder consumes one subject (use a wildcard such as falco.>); several are for --runtime kubeless", len(o.Subjects))
		}
		if o.InstallKubeless {
			add("--install-kubeless goes with --runtime kubeless")
		}
	case RuntimeKubeless:
		if o.KEDA || o.ForwarderReplicas != 1 {
			add("--keda and --forwarder-replicas apply to the default runtime, not to --runtime kubeless")
		}
	default:
		add("--runtime %q: want default or kubeless", o.Runtime)
	}
	for _, subject := range o.subjects() {
		cfg := forwarder.Defaults()
		cfg.NATS.Subject = subject
		cfg.Phantom.BaseURL, cfg.Phantom.Auth = "https://placeholder.invalid", phantom.Auth{Token: "x"}
		if err := cfg.Validate(); err != nil {
			add("--subject %q: %v", subject, err)
		}
	}
	if o.ForwarderReplicas < 1 && !o.KEDA {
		add("--forwarder-replicas must be at least 1 (or use --keda to scale from zero)")
	}
	if o.GroupWindow < 0 {
		add("--group-window must not be negative")
	}
	if o.Namespace == "" {
		add("--namespace is empty")
	}
	if o.Timeout <= 0 {
		add("--timeout must be positive")
	}
	if strings.TrimSpace(o.PhantomLabel) == "" {
		add("--phantom-label is empty")
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// tokenAuth tells whether the forwarder authenticates to SOAR with a token
// (else with user and password).
func (o *Options) tokenAuth() bool {
	return o.MockPhantom || o.PhantomAuth.Token != "" || (o.PhantomSecret != "" && o.secretHasToken)
}

// natsURL is the address of NATS inside the cluster.
func (o *Options) natsURL() string {
	if o.NATSURL != "" {
		return o.NATSURL
	}
	return fmt.Sprintf("nats://%s.%s.svc.cluster.local:4222", ReleaseNATS, o.Namespace)
}

// phantomURL is the address of SOAR the forwarder uses.
func (o *Options) phantomURL() string {
	if o.MockPhantom {
		return fmt.Sprintf("http://%s.%s.svc.cluster.local:8080", ReleaseMock, o.Namespace)
	}
	return strings.TrimRight(o.PhantomURL, "/")
}

// imageRegistry is the registry of this project's images.
func (o *Options) imageRegistry() string {
	if o.ImageRegistry != "" {
		return o.ImageRegistry
	}
	return images.DefaultRegistry
}
