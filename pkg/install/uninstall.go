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
}

// ErrNotInstalled says install never ran in the namespace.
var ErrNotInstalled = errors.New("nothing installed by kubectl falco-phantom here")

// Uninstall removes what install created in the namespace, as its record
// says, and nothing else: releases (Falco first, NATS last), the Secrets
// it wrote, the claims of the mock's and NATS's data, the record, and the
// namespace if install created it and nothing is kept in it.
func (in *Installer) Uninstall(ctx context.Context, o UninstallOptions) error {
	state, err := ReadState(ctx, in.Kube, o.Namespace)
	if err != nil {
		return err
	}
	if state == nil {
		return fmt.Errorf("namespace %s: %w (see kubectl falco-phantom status -n NAMESPACE)", o.Namespace, ErrNotInstalled)
	}
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
		return errors.Join(errs...)
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
		return errors.Join(errs...)
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
	return errors.Join(errs...)
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
