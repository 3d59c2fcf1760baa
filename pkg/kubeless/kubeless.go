// Package kubeless keeps the original deployment shape working: the
// forwarder as a Kubeless Function (a custom runtime image) behind one
// Kubeless NATSTrigger per subject, as the 2018 `deploy_playbook -p phantom`
// created them. Kubeless itself is unmaintained (last release v1.0.8, 2021)
// and its controllers cannot run on Kubernetes 1.22 or newer.
package kubeless

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Names and versions of the Kubeless contract.
const (
	Group   = "kubeless.io"
	Version = "v1beta1"
	// FunctionName is what deploy_playbook named the phantom playbook's function.
	FunctionName = "falco-phantom"
	// LastRelease is Kubeless's last release; the NATS trigger's is v1.0.0.
	LastRelease        = "v1.0.8"
	NATSTriggerRelease = "v1.0.0"
)

// Resources of the two kinds.
var (
	Functions    = schema.GroupVersionResource{Group: Group, Version: Version, Resource: "functions"}
	NATSTriggers = schema.GroupVersionResource{Group: Group, Version: Version, Resource: "natstriggers"}
)

// TriggerName is the name deploy_playbook gave the trigger of the i-th topic.
func TriggerName(i int) string { return FunctionName + "-trigger-" + strconv.Itoa(i) }

// CRDs are the CustomResourceDefinitions of Function and NATSTrigger, in
// apiextensions.k8s.io/v1 (Kubeless shipped v1beta1 ones, which Kubernetes
// 1.22 and newer refuse). The schemas keep unknown fields, as Kubeless's did.
func CRDs() []*apiextv1.CustomResourceDefinition {
	crd := func(plural, singular, kind string, short []string) *apiextv1.CustomResourceDefinition {
		preserve := true
		return &apiextv1.CustomResourceDefinition{
			TypeMeta: metav1.TypeMeta{APIVersion: "apiextensions.k8s.io/v1", Kind: "CustomResourceDefinition"},
			ObjectMeta: metav1.ObjectMeta{
				Name:   plural + "." + Group,
				Labels: map[string]string{"app.kubernetes.io/managed-by": "kubectl-falco-phantom"},
			},
			Spec: apiextv1.CustomResourceDefinitionSpec{
				Group: Group,
				Names: apiextv1.CustomResourceDefinitionNames{Plural: plural, Singular: singular, Kind: kind, ShortNames: short},
				Scope: apiextv1.NamespaceScoped,
				Versions: []apiextv1.CustomResourceDefinitionVersion{{
					Name: Version, Served: true, Storage: true,
					Schema: &apiextv1.CustomResourceValidation{OpenAPIV3Schema: &apiextv1.JSONSchemaProps{
						Type:                   "object",
						XPreserveUnknownFields: &preserve,
					}},
				}},
			},
		}
	}
	return []*apiextv1.CustomResourceDefinition{
		crd("functions", "function", "Function", []string{"fn"}),
		crd("natstriggers", "natstrigger", "NATSTrigger", nil),
	}
}

// FunctionSpec is what the Function runs.
type FunctionSpec struct {
	Namespace string
	// Image is the forwarder's image: the custom runtime.
	Image string
	// Env are the forwarder's settings; secrets are not among them.
	Env map[string]string
	// CredentialsSecret is mounted at /etc/falco-phantom/soar; Env names
	// the files (PHANTOM_*_FILE).
	CredentialsSecret string
	// CASecret, if set, is mounted at /etc/falco-phantom/soar-ca.
	CASecret string
}

// Function is the Kubeless Function running the forwarder in function
// mode: a custom runtime image serving HTTP on 8080, as `kubeless function
// deploy --runtime-image` would create it.
func Function(s FunctionSpec) *unstructured.Unstructured {
	var env []any
	for _, k := range slices.Sorted(maps.Keys(s.Env)) {
		env = append(env, map[string]any{"name": k, "value": s.Env[k]})
	}
	mounts := []any{map[string]any{"name": "soar-credentials", "mountPath": "/etc/falco-phantom/soar", "readOnly": true}}
	volumes := []any{map[string]any{"name": "soar-credentials", "secret": map[string]any{"secretName": s.CredentialsSecret, "defaultMode": int64(0o440)}}}
	if s.CASecret != "" {
		mounts = append(mounts, map[string]any{"name": "soar-ca", "mountPath": "/etc/falco-phantom/soar-ca", "readOnly": true})
		volumes = append(volumes, map[string]any{"name": "soar-ca", "secret": map[string]any{"secretName": s.CASecret}})
	}
	labels := map[string]any{"function": FunctionName, "created-by": "kubeless", "app.kubernetes.io/managed-by": "kubectl-falco-phantom"}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": Group + "/" + Version,
		"kind":       "Function",
		"metadata":   map[string]any{"name": FunctionName, "namespace": s.Namespace, "labels": labels},
		"spec": map[string]any{
			// Kubeless requires a handler; the custom runtime does not use it.
			"handler":               "phantom.handler",
			"runtime":               "",
			"function":              "",
			"function-content-type": "text",
			"deps":                  "",
			"checksum":              "",
			"timeout":               "180",
			"deployment": map[string]any{"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
				"securityContext": map[string]any{"runAsNonRoot": true, "runAsUser": int64(65532), "runAsGroup": int64(65532), "fsGroup": int64(65532)},
				"containers": []any{map[string]any{
					"name": FunctionName, "image": s.Image, "imagePullPolicy": "IfNotPresent",
					"args": []any{"--mode=function", "--listen=:8080"}, "env": env, "volumeMounts": mounts,
					"ports":          []any{map[string]any{"name": "http-function-port", "containerPort": int64(8080), "protocol": "TCP"}},
					"readinessProbe": map[string]any{"httpGet": map[string]any{"path": "/healthz", "port": int64(8080)}},
				}},
				"volumes": volumes,
			}}}},
			"service": map[string]any{
				"ports":    []any{map[string]any{"name": "http-function-port", "port": int64(8080), "protocol": "TCP", "targetPort": int64(8080)}},
				"selector": map[string]any{"function": FunctionName},
				"type":     "ClusterIP",
			},
		},
	}}
}

// Trigger is the NATSTrigger that calls the function for subject (topic).
func Trigger(namespace string, i int, subject string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": Group + "/" + Version,
		"kind":       "NATSTrigger",
		"metadata": map[string]any{
			"name": TriggerName(i), "namespace": namespace,
			"labels": map[string]any{"created-by": "kubeless", "app.kubernetes.io/managed-by": "kubectl-falco-phantom"},
		},
		"spec": map[string]any{
			"topic":            subject,
			"functionSelector": map[string]any{"matchLabels": map[string]any{"function": FunctionName, "created-by": "kubeless"}},
		},
	}}
}

// ControllersCanRun says whether Kubeless's controllers can run on a
// cluster of this version: they read their CRDs through
// apiextensions.k8s.io/v1beta1 (removed in Kubernetes 1.22) and exit when
// it is missing; their manifests also use rbac v1beta1 (removed in 1.22)
// and autoscaling/v2beta1 (removed in 1.25).
func ControllersCanRun(major, minor string) error {
	ma, err1 := strconv.Atoi(strings.TrimSuffix(major, "+"))
	mi, err2 := strconv.Atoi(strings.TrimRight(minor, "+"))
	if err1 != nil || err2 != nil {
		return fmt.Errorf("cannot read the cluster's version %q.%q", major, minor)
	}
	if ma > 1 || mi >= 22 {
		return fmt.Errorf("Kubeless %s (its last release, 2021, unmaintained) cannot run on Kubernetes %d.%d: "+
			"its controllers read their CRDs through apiextensions.k8s.io/v1beta1, which Kubernetes removed in 1.22, and exit; "+
			"use the default runtime instead (drop --runtime kubeless / --install-kubeless): the forwarder then consumes NATS JetStream itself, "+
			"with durable delivery that Kubeless never had (see docs/kubeless.md)", LastRelease, ma, mi)
	}
	return nil
}
