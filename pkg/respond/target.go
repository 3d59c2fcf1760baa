package respond

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Container ids: Falco reports the first 12 hex digits of the runtime's
// 64; a pod's status has the whole id after "<runtime>://".
const (
	minIDLen = 12
	maxIDLen = 64
)

// normalizeID checks a container id and returns it in lower case without
// a "<runtime>://" prefix.
func normalizeID(id string) (string, error) {
	s := strings.ToLower(strings.TrimSpace(id))
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	}
	if len(s) < minIDLen || len(s) > maxIDLen || strings.Trim(s, "0123456789abcdef") != "" {
		return "", invalid(fmt.Sprintf("container_id %s is not a container id: %d to %d hex digits, as Falco's container.id", quote(id), minIDLen, maxIDLen))
	}
	return s, nil
}

// shortID is the id as Falco shows it: its first 12 hex digits.
func shortID(id string) string {
	s, err := normalizeID(id)
	if err != nil {
		return ""
	}
	return s[:minIDLen]
}

// resolve finds the request's pod, in an allowed namespace.
func (r *Responder) resolve(ctx context.Context, q Request) (*corev1.Pod, error) {
	if q.Namespace != "" && !r.Policy.NamespaceAllowed(q.Namespace) {
		return nil, r.Policy.refuse(q.Namespace)
	}
	if q.Pod != "" {
		pod, err := r.Kube.CoreV1().Pods(q.Namespace).Get(ctx, q.Pod, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, &Error{Code: PodNotFound, Message: fmt.Sprintf("pod %s/%s not found", q.Namespace, q.Pod), Err: err}
		}
		if err != nil {
			return nil, kubeError("get pod "+q.Namespace+"/"+q.Pod, err)
		}
		if q.ContainerID != "" {
			id, _ := normalizeID(q.ContainerID)
			if !runs(pod, id) {
				return nil, invalid(fmt.Sprintf("pod %s/%s runs no container %s", q.Namespace, q.Pod, shortID(id)))
			}
		}
		return pod, nil
	}
	return r.byContainer(ctx, q)
}

// byContainer finds the pod running the request's container, in its
// namespace or in every allowed one.
func (r *Responder) byContainer(ctx context.Context, q Request) (*corev1.Pod, error) {
	id, _ := normalizeID(q.ContainerID)
	var spaces []string
	switch {
	case q.Namespace != "":
		spaces = []string{q.Namespace}
	case r.Policy.AllNamespaces():
		spaces = []string{metav1.NamespaceAll}
	default:
		spaces = r.Policy.Namespaces
	}
	var found []corev1.Pod
	for _, ns := range spaces {
		opts := metav1.ListOptions{Limit: 500}
		for {
			list, err := r.Kube.CoreV1().Pods(ns).List(ctx, opts)
			if err != nil {
				return nil, kubeError("list pods", err)
			}
			for _, p := range list.Items {
				if r.Policy.NamespaceAllowed(p.Namespace) && runs(&p, id) {
					found = append(found, p)
				}
			}
			if opts.Continue = list.Continue; opts.Continue == "" {
				break
			}
		}
	}
	switch len(found) {
	case 0:
		where := "in " + r.Policy.describeNamespaces()
		if q.Namespace != "" {
			where = "in namespace " + q.Namespace
		}
		return nil, &Error{Code: PodNotFound, Message: fmt.Sprintf("no pod %s runs container %s", where, shortID(id))}
	case 1:
		return &found[0], nil
	}
	names := make([]string, len(found))
	for i, p := range found {
		names[i] = p.Namespace + "/" + p.Name
	}
	return nil, &Error{Code: AmbiguousContainer, Message: fmt.Sprintf("container id %s matches %d pods (%s): give more of its digits, or the pod", id, len(found), strings.Join(names, ", "))}
}

// runs tells whether pod has a container whose id starts with id.
func runs(pod *corev1.Pod, id string) bool {
	for _, list := range [][]corev1.ContainerStatus{pod.Status.ContainerStatuses, pod.Status.InitContainerStatuses, pod.Status.EphemeralContainerStatuses} {
		for _, cs := range list {
			full := cs.ContainerID
			if i := strings.Index(full, "://"); i >= 0 {
				full = full[i+3:]
			}
			if full != "" && strings.HasPrefix(full, id) {
				return true
			}
		}
	}
	return false
}

// kubeError wraps an API server error with what was being done.
func kubeError(what string, err error) *Error {
	if apierrors.IsForbidden(err) {
		return &Error{Code: KubernetesError, Message: what + ": the API server refused it: " + apiMessage(err), Err: err}
	}
	return &Error{Code: KubernetesError, Message: what + ": " + apiMessage(err), Err: err}
}

func apiMessage(err error) string {
	if s, ok := err.(apierrors.APIStatus); ok {
		return s.Status().Message
	}
	return err.Error()
}
