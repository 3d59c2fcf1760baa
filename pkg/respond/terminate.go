package respond

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// terminate deletes the pod, refusing one no controller owns unless
// asked: nothing would start it again. The deletion is for this very pod
// (its UID): a StatefulSet's new pod of the same name is left alone.
func (a *act) terminate(ctx context.Context) error {
	if a.pod.DeletionTimestamp != nil {
		return a.done(false, "pod %s is already being deleted", a.name())
	}
	owner := metav1.GetControllerOf(a.pod)
	if owner == nil && !a.req.AllowStandalone {
		return &Error{Code: StandalonePod, Message: fmt.Sprintf("pod %s has no controller, so it will not come back once deleted: set allow_standalone (--allow-standalone) to delete it anyway, or isolate it", a.name())}
	}
	opts := metav1.DeleteOptions{
		DryRun: a.dryRun(), GracePeriodSeconds: a.req.GracePeriodSeconds,
		Preconditions: &metav1.Preconditions{UID: &a.pod.UID},
	}
	err := a.kube.CoreV1().Pods(a.pod.Namespace).Delete(ctx, a.pod.Name, opts)
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return &Error{Code: PodNotFound, Message: fmt.Sprintf("pod %s is gone", a.name()), Err: err}
	}
	if err != nil {
		return kubeError("delete pod "+a.name(), err)
	}
	grace := "its own grace period"
	if g := a.req.GracePeriodSeconds; g != nil {
		grace = fmt.Sprintf("a grace period of %d s", *g)
	}
	next := "it had no controller: it will not come back"
	if owner != nil {
		next = fmt.Sprintf("its %s %s will start a new one", owner.Kind, owner.Name)
	}
	return a.done(true, "pod %s deleted with %s; %s", a.name(), grace, next)
}
