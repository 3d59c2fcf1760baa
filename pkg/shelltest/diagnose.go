package shelltest

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/status"
)

func parseURL(s string) (*url.URL, error) { return url.Parse(s) }

// forwarderReceived is how many alerts the forwarder has received; -1 when
// it cannot be asked.
func (t *Tester) forwarderReceived(ctx context.Context, o Options) float64 {
	if o.InstallNamespace == "" {
		return -1
	}
	fw := (&status.Checker{Kube: t.Kube}).ForwarderStats(ctx, o.InstallNamespace)
	if fw.ReadyPods == 0 {
		return -1
	}
	return fw.Received
}

// forwarderDelta says whether alerts reached the forwarder while waiting.
func (t *Tester) forwarderDelta(ctx context.Context, o Options, before float64) []string {
	after := t.forwarderReceived(ctx, o)
	switch {
	case before < 0 || after < 0:
		return []string{"forwarder: its metrics could not be read (see: kubectl falco-phantom status)"}
	case after == before:
		return []string{fmt.Sprintf("forwarder: received no alert since the shell opened (%.0f in all): the alert did not reach NATS; look at Falco and falcosidekick below", after)}
	default:
		return []string{fmt.Sprintf("forwarder: received %.0f alerts since the shell opened, none with the marker in SOAR yet: look at the forwarder's log and the dead letters", after-before)}
	}
}

// diagnose looks at each hop for the outcome and says what it found.
func (t *Tester) diagnose(ctx context.Context, o Options, outcome Outcome) []string {
	var out []string
	switch outcome {
	case ExecFailed:
		out = append(out, "exec: needs the pods/exec permission, a running container with /bin/sh, and (for the created pod) an image the node can pull: --image")
	case SOARUnreachable:
		out = append(out, "SOAR: check the URL and credentials (--phantom-url/--phantom-token-file), or the mock SOAR's pod: kubectl -n "+o.InstallNamespace+" get pods -l app.kubernetes.io/name=mockphantom")
	case NoEvent:
		if o.InstallNamespace == "" {
			return append(out, "the pipeline's namespace is unknown: give --install-namespace to look at its pods")
		}
		out = append(out, t.pods(ctx, o.InstallNamespace, "app.kubernetes.io/name=falco", "Falco",
			"Falco must run on the node of the pod, with a working driver (see its logs: kubectl -n "+o.InstallNamespace+" logs ds/falco)")...)
		out = append(out, t.pods(ctx, o.InstallNamespace, "app.kubernetes.io/name=falcosidekick", "falcosidekick",
			"it publishes Falco's alerts to NATS")...)
		out = append(out, t.pods(ctx, o.InstallNamespace, "app.kubernetes.io/name=nats", "NATS", "the JetStream stream FALCO stores the alerts")...)
		fw := (&status.Checker{Kube: t.Kube}).ForwarderStats(ctx, o.InstallNamespace)
		line := fmt.Sprintf("forwarder: %d/%d pods ready, received %.0f, delivered %.0f, retried %.0f, dead-lettered %.0f",
			fw.ReadyPods, fw.Pods, fw.Received, fw.Delivered, fw.Retried, fw.DeadLettered)
		if fw.NotReady != "" {
			line += "; " + fw.NotReady
		}
		out = append(out, line)
	case NotIsolated:
		if o.InstallNamespace == "" {
			return append(out, "the pipeline's namespace is unknown: give --install-namespace to look at its pods")
		}
		out = append(out, t.pods(ctx, o.InstallNamespace, "app.kubernetes.io/name=falco-phantom-responder", "responder",
			"install --responder puts it there; a playbook calls it (see docs/respond.md)")...)
		out = append(out, "playbook: the mock SOAR's action runs show what it called and the answer: GET /rest/action_run?_filter_container=<case>; the responder's log has an audit line per request: kubectl -n "+o.InstallNamespace+" logs deploy/falco-phantom-responder")
	}
	return out
}

// pods describes the pods of one hop, and warns when none is ready.
func (t *Tester) pods(ctx context.Context, ns, selector, what, hint string) []string {
	list, err := t.Kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return []string{fmt.Sprintf("%s: cannot list pods: %v", what, err)}
	}
	if len(list.Items) == 0 {
		return []string{fmt.Sprintf("%s: no pod in namespace %s (installed elsewhere, or --skip-falco?); %s", what, ns, hint)}
	}
	ready := 0
	var notReady []string
	for _, p := range list.Items {
		if isReady(&p) {
			ready++
			continue
		}
		notReady = append(notReady, p.Name+" "+waitingReason(&p, p.Spec.Containers[0].Name))
	}
	line := fmt.Sprintf("%s: %d/%d pods ready", what, ready, len(list.Items))
	if len(notReady) > 0 {
		line += " (" + strings.Join(notReady, "; ") + "); " + hint
	}
	return []string{line}
}

func isReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
