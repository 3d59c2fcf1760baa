// Package status reports the health of an installed pipeline: releases,
// pods, and the forwarder's own view (its metrics and readiness).
package status

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/forwarder"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/helm"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/install"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/respond"
)

// Report is the status of one installation.
type Report struct {
	Namespace  string         `json:"namespace"`
	Healthy    bool           `json:"healthy"`
	Components []Component    `json:"components"`
	Forwarder  *Forwarder     `json:"forwarder,omitempty"`
	Responder  *Responder     `json:"responder,omitempty"`
	Problems   []string       `json:"problems,omitempty"`
	State      *install.State `json:"install"`
}

// Component is one release.
type Component struct {
	Name          install.Component `json:"name"`
	Release       string            `json:"release"`
	Chart         string            `json:"chart,omitempty"`
	ReleaseStatus string            `json:"releaseStatus"`
	// Workloads is each workload's readiness, e.g. "Deployment/x 1/1 ready".
	Workloads []string `json:"workloads"`
	Ready     bool     `json:"ready"`
	Detail    string   `json:"detail,omitempty"`
}

// Forwarder is what the forwarder pods report about themselves.
type Forwarder struct {
	Pods         int     `json:"pods"`
	ReadyPods    int     `json:"readyPods"`
	Received     float64 `json:"received"`
	Delivered    float64 `json:"delivered"`
	Retried      float64 `json:"retried"`
	DeadLettered float64 `json:"deadLettered"`
	// PhantomReachable is nil when no pod could be asked.
	PhantomReachable *bool  `json:"phantomReachable"`
	PhantomURL       string `json:"phantomURL"`
	// NotReady is the reason a pod gives for not being ready.
	NotReady string `json:"notReady,omitempty"`
}

// Responder is what the responder may do, and the pods it left isolated.
type Responder struct {
	Pods       int              `json:"pods"`
	ReadyPods  int              `json:"readyPods"`
	URL        string           `json:"url"`
	Namespaces []string         `json:"namespaces"`
	Actions    []respond.Action `json:"actions"`
	// Isolated are the isolated pods of every namespace the caller may
	// read; IsolatedUnknown says why they could not be listed.
	Isolated        []install.IsolatedPod `json:"isolated"`
	IsolatedUnknown string                `json:"isolatedUnknown,omitempty"`
}

// Checker builds reports.
type Checker struct {
	Helm helm.Client
	Kube kubernetes.Interface
	// MetricsPort is the forwarder's metrics port (default
	// install.ForwarderHealthPort).
	MetricsPort int
}

// ErrNotInstalled is returned when install never ran in the namespace.
var ErrNotInstalled = install.ErrNotInstalled

// Check reports on the installation in namespace.
func (c *Checker) Check(ctx context.Context, namespace string) (*Report, error) {
	state, err := install.ReadState(ctx, c.Kube, namespace)
	if err != nil {
		return nil, err
	}
	if state == nil {
		return nil, fmt.Errorf("namespace %s: %w (install with: kubectl falco-phantom install -n %s)", namespace, ErrNotInstalled, namespace)
	}
	r := &Report{Namespace: namespace, Healthy: true, State: state}
	for _, name := range install.Components() {
		if !state.Has(name) {
			continue
		}
		comp := c.component(ctx, namespace, name)
		if !comp.Ready {
			r.Healthy = false
			r.Problems = append(r.Problems, fmt.Sprintf("%s: %s", name, comp.Detail))
		}
		r.Components = append(r.Components, comp)
	}
	if state.Has(install.Forwarder) {
		fw := c.ForwarderStats(ctx, namespace)
		fw.PhantomURL = state.PhantomURL
		r.Forwarder = fw
		switch {
		case fw.ReadyPods == 0:
			r.Healthy = false
			r.Problems = append(r.Problems, "forwarder: no ready pod: alerts wait in NATS until one runs")
		case fw.PhantomReachable != nil && !*fw.PhantomReachable:
			r.Healthy = false
			r.Problems = append(r.Problems, "SOAR is not reachable from the forwarder: "+fw.NotReady)
		case fw.NotReady != "":
			r.Healthy = false
			r.Problems = append(r.Problems, "forwarder: "+fw.NotReady)
		}
		if fw.DeadLettered > 0 {
			r.Problems = append(r.Problems, fmt.Sprintf("forwarder: %.0f alerts dead-lettered; see docs/forwarder.md (dead letters and replay)", fw.DeadLettered))
		}
	}
	if state.Has(install.Responder) {
		r.Responder = c.responder(ctx, namespace, state.Responder)
	}
	return r, nil
}

// responder reports on the responder's pods and the isolated pods.
// Isolation is no problem: it is what the responder is for.
func (c *Checker) responder(ctx context.Context, namespace string, s *install.ResponderState) *Responder {
	r := &Responder{}
	if s != nil {
		r.URL, r.Namespaces, r.Actions = s.URL, s.Namespaces, s.Actions
	}
	if pods, err := c.Kube.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: install.Responder.Selector()}); err == nil {
		for _, p := range pods.Items {
			r.Pods++
			if podReady(&p) {
				r.ReadyPods++
			}
		}
	}
	isolated, err := install.Isolated(ctx, c.Kube)
	if err != nil {
		r.IsolatedUnknown = err.Error()
	}
	r.Isolated = isolated
	if r.Isolated == nil {
		r.Isolated = []install.IsolatedPod{}
	}
	return r
}

func (c *Checker) component(ctx context.Context, namespace string, name install.Component) Component {
	comp := Component{Name: name, Release: name.Release()}
	rel, err := c.Helm.Get(ctx, comp.Release, namespace)
	switch {
	case err != nil:
		comp.ReleaseStatus, comp.Detail = "unknown", err.Error()
		return comp
	case rel == nil:
		comp.ReleaseStatus, comp.Detail = "missing", "release "+comp.Release+" is not installed"
		return comp
	}
	comp.Chart = rel.Chart + "-" + rel.ChartVersion
	comp.ReleaseStatus = rel.Status
	if rel.Status != "deployed" {
		comp.Detail = "release " + rel.Status
		return comp
	}
	ready, lines, detail, err := install.Readiness(ctx, c.Kube, namespace, rel.Manifest)
	if err != nil {
		comp.Detail = err.Error()
		return comp
	}
	comp.Workloads, comp.Ready, comp.Detail = lines, ready, detail
	return comp
}

// ForwarderStats asks the forwarder pods of namespace for their metrics and readiness.
func (c *Checker) ForwarderStats(ctx context.Context, namespace string) *Forwarder {
	fw := &Forwarder{}
	port := c.MetricsPort
	if port == 0 {
		port = install.ForwarderHealthPort
	}
	pods, err := c.Kube.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: install.Forwarder.Selector()})
	if err != nil {
		fw.NotReady = err.Error()
		return fw
	}
	up := false
	asked := false
	for _, p := range pods.Items {
		fw.Pods++
		if !podReady(&p) {
			if reason := c.readyz(ctx, &p, port); reason != "" {
				fw.NotReady = reason
			}
			continue
		}
		fw.ReadyPods++
		families, err := c.metrics(ctx, &p, port)
		if err != nil {
			fw.NotReady = fmt.Sprintf("pod %s: cannot read metrics: %v", p.Name, err)
			continue
		}
		asked = true
		fw.Received += sum(families, forwarder.MetricReceived)
		fw.Delivered += sum(families, forwarder.MetricDelivered)
		fw.Retried += sum(families, forwarder.MetricRetried)
		fw.DeadLettered += sum(families, forwarder.MetricDeadLettered)
		up = up || sum(families, forwarder.MetricPhantomUp) > 0
	}
	if asked {
		fw.PhantomReachable = &up
	}
	return fw
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// readyz asks a pod why it is not ready; "" when it cannot be asked.
func (c *Checker) readyz(ctx context.Context, p *corev1.Pod, port int) string {
	if p.Status.Phase != corev1.PodRunning {
		return fmt.Sprintf("pod %s is %s", p.Name, p.Status.Phase)
	}
	body, err := c.Kube.CoreV1().Pods(p.Namespace).ProxyGet("http", p.Name, fmt.Sprint(port), "/readyz", nil).DoRaw(ctx)
	if err != nil {
		var se *apierrors.StatusError
		if errors.As(err, &se) && se.ErrStatus.Details != nil {
			for _, cause := range se.ErrStatus.Details.Causes {
				if cause.Message != "" {
					return fmt.Sprintf("pod %s: %s", p.Name, strings.TrimSpace(cause.Message))
				}
			}
		}
		return fmt.Sprintf("pod %s: %s", p.Name, strings.TrimSpace(string(body)+" "+err.Error()))
	}
	return ""
}

func (c *Checker) metrics(ctx context.Context, p *corev1.Pod, port int) (map[string]*dto.MetricFamily, error) {
	body, err := c.Kube.CoreV1().Pods(p.Namespace).ProxyGet("http", p.Name, fmt.Sprint(port), "/metrics", nil).DoRaw(ctx)
	if err != nil {
		return nil, err
	}
	return parseMetrics(body)
}

// parseMetrics reads the Prometheus text format.
func parseMetrics(b []byte) (map[string]*dto.MetricFamily, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	return parser.TextToMetricFamilies(bytes.NewReader(b))
}

// sum adds every series of a counter or gauge family.
func sum(families map[string]*dto.MetricFamily, name string) float64 {
	f, ok := families[name]
	if !ok {
		return 0
	}
	total := 0.0
	for _, m := range f.GetMetric() {
		switch {
		case m.Counter != nil:
			total += m.GetCounter().GetValue()
		case m.Gauge != nil:
			total += m.GetGauge().GetValue()
		}
	}
	return total
}
