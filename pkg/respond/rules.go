package respond

import (
	"slices"

	rbacv1 "k8s.io/api/rbac/v1"
)

// Rules are the Kubernetes rights the actions need, and no more:
// namespaced are granted in each allowed namespace (or cluster-wide for
// AllNamespaces), cluster for what is not namespaced (nodes).
func Rules(actions []Action) (namespaced, cluster []rbacv1.PolicyRule) {
	if actions == nil {
		actions = Actions()
	}
	has := func(as ...Action) bool {
		return slices.ContainsFunc(as, func(a Action) bool { return slices.Contains(actions, a) })
	}
	pods := []string{"get", "list"}
	if has(Isolate, Release, Label, Annotate) {
		pods = append(pods, "patch")
	}
	if has(Terminate) {
		pods = append(pods, "delete")
	}
	namespaced = append(namespaced, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: pods})
	var nps []string
	if has(Isolate) {
		nps = append(nps, "get", "list", "create")
	}
	if has(Release) {
		nps = append(nps, "delete")
	}
	if len(nps) > 0 {
		namespaced = append(namespaced, rbacv1.PolicyRule{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"networkpolicies"}, Verbs: nps})
	}
	if has(Describe) {
		namespaced = append(namespaced,
			rbacv1.PolicyRule{APIGroups: []string{"apps"}, Resources: []string{"replicasets", "deployments", "statefulsets", "daemonsets"}, Verbs: []string{"get"}},
			rbacv1.PolicyRule{APIGroups: []string{"batch"}, Resources: []string{"jobs", "cronjobs"}, Verbs: []string{"get"}},
			rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"replicationcontrollers"}, Verbs: []string{"get"}},
		)
	}
	if has(Cordon, Uncordon) {
		cluster = append(cluster, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get", "patch"}})
	}
	return namespaced, cluster
}
