// Package install puts the pipeline on a cluster (NATS, Falco with
// falcosidekick, the forwarder, optionally the mock SOAR), upgrades it in
// place, and removes it again. Helm is reached only through pkg/helm.
//
// What an install makes exist is decided once, by NewPlan, from the
// Options and what the cluster already holds; Apply applies that plan and
// Render prints it (--dry-run), so the two cannot drift.
package install

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/falco-phantom/kubectl-falco-phantom/internal/fields"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/falco"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/forwarder"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/helm"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/phantom"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/respond"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/version"
)

// Names of what install creates.
const (
	DefaultNamespace = "falco-phantom"
	// SecretSOAR holds the forwarder's SOAR credentials.
	SecretSOAR = "falco-phantom-soar"
	// SecretMock holds the credentials the mock SOAR accepts.
	SecretMock = "mockphantom-credentials"
	// SecretSOARCA holds the CA certificates to trust for SOAR.
	SecretSOARCA = "falco-phantom-soar-ca"
	// SecretNATSCreds holds the forwarder's NATS credentials file.
	SecretNATSCreds = "falco-phantom-nats-creds"
	// SecretResponderTLS holds the responder's CA and certificate (ca.crt,
	// tls.crt, tls.key), unless the user gives one.
	SecretResponderTLS = "falco-phantom-responder-tls"
	// SecretResponderToken holds the bearer token the responder accepts
	// (key token).
	SecretResponderToken = "falco-phantom-responder-token"
	// StateConfigMap records what install created (never secrets), so that
	// uninstall removes exactly that and status knows what to check.
	StateConfigMap = "falco-phantom-install"

	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "kubectl-falco-phantom"
)

// Pinned upstream charts (REFERENCE: Falco chart 9.x ships Falco 0.44,
// NATS chart 2.14.x).
var (
	DefaultNATSChart  = helm.Chart{Ref: "nats", RepoURL: "https://nats-io.github.io/k8s/helm/charts/", Version: "2.14.2"}
	DefaultFalcoChart = helm.Chart{Ref: "falco", RepoURL: "https://falcosecurity.github.io/charts", Version: "9.1.0"}
)

// Runtime is how the forwarder runs.
type Runtime string

const (
	// RuntimeDefault runs the forwarder as a Deployment consuming NATS
	// JetStream: durable, the way forward.
	RuntimeDefault Runtime = "default"
	// RuntimeKubeless runs it as a Kubeless Function behind NATSTriggers,
	// the original shape.
	RuntimeKubeless Runtime = "kubeless"
)

// Options is what the user asked for. Validate and NewPlan report problems
// by field name ({PhantomURL}); a command says them as its own flags.
type Options struct {
	Namespace string

	// NATSURL points at an existing NATS; empty installs NATS.
	NATSURL      string
	NATSReplicas int
	NATSChart    helm.Chart
	// NATSSet are extra values of the NATS chart, key=value, applied over
	// install's own; JetStream stays on.
	NATSSet []string
	// NATSCreds is a NATS credentials file for the NATS at NATSURL.
	NATSCreds []byte

	// SkipFalco leaves Falco alone (it already runs and publishes to NATS).
	SkipFalco   bool
	FalcoDriver string
	// FalcoSet are extra values of the Falco chart, key=value, applied
	// over install's own.
	FalcoSet   []string
	FalcoChart helm.Chart

	// MockPhantom installs the mock SOAR and points the forwarder at it.
	MockPhantom bool
	// MockPersistence keeps the mock's data on a PersistentVolumeClaim.
	MockPersistence bool
	PhantomURL      string
	// PhantomAuth are credentials given by the user.
	PhantomAuth phantom.Auth
	// PhantomSecret names an existing Secret with the credentials (keys
	// user and password, or token).
	PhantomSecret         string
	InsecureSkipTLSVerify bool
	// PhantomCA is PEM CA certificates to trust for SOAR.
	PhantomCA    []byte
	PhantomLabel string

	// Subjects are the NATS subjects the forwarder consumes: one with the
	// default runtime (a wildcard covers many), one Kubeless trigger each
	// with RuntimeKubeless.
	Subjects          []string
	ForwarderReplicas int
	GroupWindow       time.Duration
	// KEDA scales the forwarder with the NATS backlog, down to zero.
	KEDA bool

	// Responder installs the service SOAR playbooks call to act on the
	// cluster (docs/respond.md).
	Responder bool
	// ResponderNamespaces are where its actions may happen;
	// respond.AllNamespaces for all but the install namespace and
	// kube-system.
	ResponderNamespaces []string
	// ResponderActions are the actions it allows.
	ResponderActions []respond.Action
	// ResponderTLSSecret names an existing Secret (tls.crt, tls.key, and
	// ca.crt for the callers) to serve with instead of the one install
	// generates.
	ResponderTLSSecret string

	Runtime Runtime
	// InstallKubeless also deploys Kubeless's controllers (only where they
	// can run), from KubelessManifests.
	InstallKubeless   bool
	KubelessManifests []string

	// ImageRegistry replaces the registry of every image (offline clusters).
	ImageRegistry string
	// ImageTag is the tag of this project's images; default the plugin's version.
	ImageTag string

	// Wait waits for each component to be ready, for at most Timeout.
	Wait    bool
	Timeout time.Duration
}

// Defaults returns the default options.
func Defaults() Options {
	return Options{
		Namespace: DefaultNamespace, NATSReplicas: 1, NATSChart: DefaultNATSChart, FalcoDriver: "auto",
		FalcoChart: DefaultFalcoChart, MockPersistence: true, PhantomLabel: "events", Subjects: []string{"falco.>"},
		ForwarderReplicas: 1, GroupWindow: 5 * time.Minute, ImageTag: version.Version, Wait: true, Timeout: 5 * time.Minute,
		Runtime: RuntimeDefault, KubelessManifests: DefaultKubelessManifests,
		ResponderNamespaces: []string{respond.AllNamespaces}, ResponderActions: respond.DefaultActions(),
	}
}

// Validate checks the options on their own (NewPlan checks what needs the
// cluster). The error is a fields.List naming the options at fault.
func (o *Options) Validate() error {
	var errs fields.List
	add := func(format string, args ...any) { errs = append(errs, fields.Errorf(format, args...)) }
	if o.MockPhantom {
		if o.PhantomURL != "" || !o.PhantomAuth.Empty() || o.PhantomSecret != "" {
			add("{MockPhantom} installs its own SOAR: do not combine it with {PhantomURL}, {PhantomAuth.User}/{PhantomAuth.Password}, {PhantomAuth.Token} or {PhantomSecret}")
		}
	} else {
		if o.PhantomURL == "" {
			add("say where SOAR is: {PhantomURL} https://soar.example.com, or {MockPhantom} to install the mock")
		} else if _, err := phantom.ParseBaseURL(o.PhantomURL); err != nil {
			add("{PhantomURL}: %v", err)
		}
		switch {
		case o.PhantomSecret != "" && !o.PhantomAuth.Empty():
			add("{PhantomSecret} and {PhantomAuth.User}/{PhantomAuth.Password}/{PhantomAuth.Token} exclude each other")
		case o.PhantomSecret == "" && o.PhantomAuth.Empty():
			add("SOAR credentials are missing: {PhantomAuth.Token}, {PhantomAuth.User} with {PhantomAuth.Password}, or {PhantomSecret} NAME")
		case o.PhantomAuth.Token != "" && (o.PhantomAuth.User != "" || o.PhantomAuth.Password != ""):
			add("{PhantomAuth.Token} and {PhantomAuth.User}/{PhantomAuth.Password} exclude each other")
		case o.PhantomAuth.Token == "" && o.PhantomSecret == "" && (o.PhantomAuth.User == "" || o.PhantomAuth.Password == ""):
			add("{PhantomAuth.User} and {PhantomAuth.Password} go together")
		}
	}
	if len(o.PhantomCA) > 0 && (o.MockPhantom || o.InsecureSkipTLSVerify) {
		add("{PhantomCA} goes with a real SOAR whose certificate is verified (not with {MockPhantom} or {InsecureSkipTLSVerify})")
	}
	if o.InsecureSkipTLSVerify && o.MockPhantom {
		add("{InsecureSkipTLSVerify} has no effect with {MockPhantom} (it speaks plain HTTP inside the cluster)")
	}
	if len(o.NATSCreds) > 0 && o.NATSURL == "" {
		add("{NATSCreds} goes with {NATSURL} (the NATS this command installs needs no credentials)")
	}
	if o.NATSURL != "" {
		// Never quoted: it may hold a password.
		u, err := url.Parse(o.NATSURL)
		switch {
		case strings.Contains(o.NATSURL, "@"):
			add("{NATSURL} must not hold credentials: they would be stored in clear in the forwarder's Deployment and the install record; give them with {NATSCreds}")
		case err != nil || (u.Scheme != "nats" && u.Scheme != "tls") || u.Host == "":
			add("{NATSURL}: want nats://host:4222 or tls://host:4222")
		}
		if o.NATSReplicas != 1 {
			add("{NATSReplicas} applies to the NATS this command installs, not to {NATSURL}")
		}
		if len(o.NATSSet) > 0 {
			add("{NATSSet} configures the NATS this command installs, not the one at {NATSURL}")
		}
	}
	if o.NATSReplicas != 1 && o.NATSReplicas != 3 && o.NATSReplicas != 5 {
		add("{NATSReplicas} %d: want 1 (a lab), or 3 or 5 (a JetStream cluster)", o.NATSReplicas)
	}
	if !slices.Contains([]string{"auto", "modern_ebpf", "kmod"}, o.FalcoDriver) {
		add("{FalcoDriver} %q: want auto, modern_ebpf or kmod (ebpf was removed in Falco chart 9)", o.FalcoDriver)
	}
	if o.SkipFalco && (len(o.FalcoSet) > 0 || o.FalcoDriver != "auto") {
		add("{SkipFalco}: {FalcoDriver} and {FalcoSet} have nothing to configure")
	}
	for _, set := range []struct {
		field       string
		assignments []string
	}{{"{FalcoSet}", o.FalcoSet}, {"{NATSSet}", o.NATSSet}} {
		for _, a := range set.assignments {
			if err := checkAssignment(a); err != nil {
				add(set.field+" %q: %v", a, err)
			}
		}
	}
	switch o.Runtime {
	case RuntimeDefault:
		if len(o.Subjects) > 1 {
			add("{Subjects} was given %d times: the forwarder consumes one subject (use a wildcard such as falco.>); several are for {Runtime} kubeless", len(o.Subjects))
		}
		if o.InstallKubeless {
			add("{InstallKubeless} goes with {Runtime} kubeless")
		}
	case RuntimeKubeless:
		if o.KEDA || o.ForwarderReplicas != 1 {
			add("{KEDA} and {ForwarderReplicas} apply to the default runtime, not to {Runtime} kubeless")
		}
	default:
		add("{Runtime} %q: want default or kubeless", string(o.Runtime))
	}
	if len(o.Subjects) == 0 {
		add("{Subjects} is empty: give the NATS subject to consume, e.g. falco.>")
	}
	for _, subject := range o.Subjects {
		if err := checkSubject(subject); err != nil {
			add("{Subjects} %q: %v", subject, err)
		}
	}
	if o.ForwarderReplicas < 1 && !o.KEDA {
		add("{ForwarderReplicas} must be at least 1 (or use {KEDA} to scale from zero)")
	}
	if o.GroupWindow < 0 {
		add("{GroupWindow} must not be negative")
	}
	if o.Namespace == "" {
		add("{Namespace} is empty")
	}
	if o.Timeout <= 0 {
		add("{Timeout} must be positive")
	}
	if strings.TrimSpace(o.PhantomLabel) == "" {
		add("{PhantomLabel} is empty")
	}
	errs = append(errs, o.validateResponder()...)
	return errs.Err()
}

// checkAssignment checks one chart value key=value, as Helm's --set
// parses it.
func checkAssignment(a string) error {
	key, _, ok := strings.Cut(a, "=")
	if !ok || strings.TrimSpace(key) == "" {
		return errors.New("want key=value")
	}
	if err := helm.SetValues(map[string]any{}, []string{a}); err != nil {
		return errors.Unwrap(err)
	}
	return nil
}

// checkSubject checks a subject the forwarder is to consume: a valid NATS
// subject that does not take in the forwarder's own dead letters.
func checkSubject(subject string) error {
	if err := falco.ValidSubject(subject, true); err != nil {
		return err
	}
	if dl := forwarder.Defaults().NATS.DeadLetterSubject; falco.SubjectCovers(subject, dl+".x") {
		return fmt.Errorf("it takes in the dead letters (%s.>): they would loop back", dl)
	}
	return nil
}

// natsURL is the address of NATS inside the cluster.
func (o *Options) natsURL() string {
	if o.NATSURL != "" {
		return o.NATSURL
	}
	return "nats://" + NATS.Release() + "." + o.Namespace + ".svc.cluster.local:4222"
}

// phantomURL is the address of SOAR the forwarder uses.
func (o *Options) phantomURL() string {
	if o.MockPhantom {
		return "http://" + MockPhantom.Release() + "." + o.Namespace + ".svc.cluster.local:8080"
	}
	return strings.TrimRight(o.PhantomURL, "/")
}
