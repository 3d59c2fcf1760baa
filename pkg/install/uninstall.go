package install

import (
	"context"
	"errors"
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// UninstallOptions says what to keep.
type UninstallOptions struct {
	Namespace string
	KeepNATS  bool
	KeepFalco bool
	// ReleaseIsolated releases the pods the responder isolated, with the
	// caller's rights, and deletes the isolation policies left. Without
	// it, isolation stays in place: the pods stay cut off for forensics.
	ReleaseIsolated bool
}

// UninstallResult says what an uninstall left, or undid, of isolation.
type UninstallResult struct {
	// Isolated are the pods still isolated.
	Isolated []IsolatedPod `json:"isolated"`
	// Released are the pods ReleaseIsolated released.
	Released []IsolatedPod `json:"released,omitempty"`
	// IsolatedUnknown says why the isolated pods could not be listed.
	IsolatedUnknown string `json:"isolatedUnknown,omitempty"`
}

// ErrNotInstalled says install never ran in the namespace.
var ErrNotInstalled = errors.New("nothing installed by kubectl falco-phantom here")

// Uninstall removes what install created in the namespace, as its record
// says, and nothing else: releases (Falco first, NATS last), the Secrets
// it wrote, the claims of the mock's and NATS's data, the record, and the
// namespace if install created it and nothing is kept in it. Isolated
// pods stay isolated unless o.ReleaseIsolated; the result lists them.
func (in *Installer) Uninstall(ctx context.Context, o UninstallOptions) (*UninstallResult, error) {
	state, err := ReadState(ctx, in.Kube, o.Namespace)
	if err != nil {
		return nil, err
	}
	if state == nil {
		return nil, fmt.Errorf("namespace %s: %w (see kubectl falco-phantom status -n NAMESPACE)", o.Namespace, ErrNotInstalled)
	}
	hadResponder := state.Has(Responder)
	res, err := in.uninstall(ctx, o, state)
	if !hadResponder && !o.ReleaseIsolated {
		return res, err
	}
	isoErrs := in.isolation(ctx, o, res)
	return res, errors.Join(append([]error{err}, isoErrs...)...)
}

// isolation lists the pods left isolated once the responder is gone, and
// releases them when asked.
func (in *Installer) isolation(ctx context.Context, o UninstallOptions, res *UninstallResult) []error {
	pods, err := Isolated(ctx, in.Kube)
	if err != nil && o.ReleaseIsolated {
		return []error{err}
	}
	if err != nil {
		res.IsolatedUnknown = err.Error()
		in.progress("• could not check for isolated pods: %v", err)
		return nil
	}
	if !o.ReleaseIsolated {
		res.Isolated = pods
		return nil
	}
	if len(pods) > 0 {
		in.progress("• releasing %d isolated pod(s)", len(pods))
	}
	released, errs := in.releaseIsolated(ctx, pods)
	res.Released = released
	for _, p := range pods {
		if !slices.Contains(released, p) {
			res.Isolated = append(res.Isolated, p)
		}
	}
	return errs
}

func (in *Installer) uninstall(ctx context.Context, o UninstallOptions, state *State) (*UninstallResult, error) {
	res := &UninstallResult{}
	keep := func(c Component) bool { return (c == NATS && o.KeepNATS) || (c == Falco && o.KeepFalco) }
	var errs []error
	if err := in.deleteKubeless(ctx, o.Namespace, state); err != nil {
		errs = append(errs, err)
	} else {
		state.KubelessObjects, state.KubelessCRDs = nil, nil
	}
	all := Components()
	slices.Reverse(all)
	for _, c := range all {
		if !state.Has(c) || keep(c) {
			continue
		}
		in.progress("• %s: uninstalling release %s/%s", c, o.Namespace, c.Release())
		if err := in.Helm.Uninstall(ctx, c.Release(), o.Namespace); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c, err))
			continue
		}
		if err := in.deleteClaims(ctx, o.Namespace, c); err != nil {
			errs = append(errs, err)
		}
		state.Components = slices.DeleteFunc(state.Components, func(s Component) bool { return s == c })
	}
	if len(errs) > 0 {
		_ = writeState(ctx, in.Kube, o.Namespace, state)
		return res, errors.Join(errs...)
	}
	secrets := in.Kube.CoreV1().Secrets(o.Namespace)
	for _, s := range state.Secrets {
		if err := secrets.Delete(ctx, s, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete Secret %s: %w", s, err))
		}
	}
	if len(state.Components) > 0 {
		// Something is kept: keep its record and the namespace.
		state.Secrets = nil
		errs = append(errs, writeState(ctx, in.Kube, o.Namespace, state))
		in.progress("• kept %v in namespace %s", state.Components, o.Namespace)
		return res, errors.Join(errs...)
	}
	if err := in.Kube.CoreV1().ConfigMaps(o.Namespace).Delete(ctx, StateConfigMap, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		errs = append(errs, fmt.Errorf("delete install record: %w", err))
	}
	if state.NamespaceCreated {
		in.progress("• deleting namespace %s (created by install)", o.Namespace)
		if err := in.Kube.CoreV1().Namespaces().Delete(ctx, o.Namespace, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete namespace %s: %w", o.Namespace, err))
		}
	}
	return res, errors.Join(errs...)
}

// deleteClaims removes the PersistentVolumeClaims a component's release
// leaves behind (StatefulSet volume claims, the mock's kept data claim).
func (in *Installer) deleteClaims(ctx context.Context, namespace string, component Component) error {
	if !component.keepsData() {
		return nil
	}
	pvcs := in.Kube.CoreV1().PersistentVolumeClaims(namespace)
	list, err := pvcs.List(ctx, metav1.ListOptions{LabelSelector: component.Selector()})
	if err != nil {
		return fmt.Errorf("list claims of %s: %w", component, err)
	}
	for _, p := range list.Items {
		if err := pvcs.Delete(ctx, p.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete claim %s: %w", p.Name, err)
		}
		in.progress("  %s: deleted claim %s", component, p.Name)
	}
	return nil
}
