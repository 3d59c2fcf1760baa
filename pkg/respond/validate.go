package respond

import (
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/util/validation"
)

// IsolationLabel marks an isolated pod; its value is the case id, or
// "manual". Only isolate and release set and remove it.
const IsolationLabel = "falco-phantom.io/isolated"

// maxText bounds the free-text fields of a request (reason, requested_by).
const maxText = 1024

// validate checks the request's fields before anything is asked of the
// API server.
func (q Request) validate() error {
	if q.Pod == "" && q.ContainerID == "" {
		return invalid("no target: give namespace and pod, or container_id")
	}
	if q.Pod != "" {
		if q.Namespace == "" {
			return invalid("pod " + quote(q.Pod) + " without a namespace: give namespace too")
		}
		if errs := validation.IsDNS1123Subdomain(q.Pod); len(errs) > 0 {
			return invalid(fmt.Sprintf("pod name %s is not a pod name: %s", quote(q.Pod), errs[0]))
		}
	}
	if q.Namespace != "" {
		if errs := validation.IsDNS1123Label(q.Namespace); len(errs) > 0 {
			return invalid(fmt.Sprintf("namespace %s is not a namespace name: %s", quote(q.Namespace), errs[0]))
		}
	}
	if q.ContainerID != "" {
		if _, err := normalizeID(q.ContainerID); err != nil {
			return err
		}
	}
	if q.CaseID < 0 {
		return invalid(fmt.Sprintf("case_id %d: a SOAR container id is positive", q.CaseID))
	}
	for name, v := range map[string]string{"reason": q.Reason, "requested_by": q.RequestedBy} {
		if len(v) > maxText || !utf8.ValidString(v) {
			return invalid(fmt.Sprintf("%s: at most %d bytes of UTF-8", name, maxText))
		}
	}
	if q.GracePeriodSeconds != nil && *q.GracePeriodSeconds < 0 {
		return invalid("grace_period_seconds is negative")
	}
	// Fields of other actions are refused rather than ignored: a
	// playbook that sends labels to isolate has a mistake in it.
	extra := map[string]bool{
		"labels": len(q.Labels) > 0 && q.Action != Label, "annotations": len(q.Annotations) > 0 && q.Action != Annotate,
		"grace_period_seconds": q.GracePeriodSeconds != nil && q.Action != Terminate, "allow_standalone": q.AllowStandalone && q.Action != Terminate,
		"taint": q.Taint != "" && q.Action != Cordon && q.Action != Uncordon,
	}
	for _, f := range sortedTrue(extra) {
		return invalid(fmt.Sprintf("%s is not a field of %s", f, q.Action))
	}
	switch q.Action {
	case Label:
		if len(q.Labels) == 0 {
			return invalid(`label: no labels given ("key": "value" sets, "key-": "" removes)`)
		}
		_, err := parseChanges("label", q.Labels, true)
		return err
	case Annotate:
		if len(q.Annotations) == 0 {
			return invalid(`annotate: no annotations given ("key": "value" sets, "key-": "" removes)`)
		}
		_, err := parseChanges("annotation", q.Annotations, false)
		return err
	case Cordon, Uncordon:
		if q.Taint != "" {
			_, err := ParseTaint(q.Taint)
			return err
		}
	}
	return nil
}

func sortedTrue(m map[string]bool) []string {
	var out []string
	for k, v := range m {
		if v {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// change is one label or annotation to set, or to remove (remove true).
type change struct {
	key, value string
	remove     bool
}

// parseChanges reads "key": "value" (set) and "key-": "" (remove) pairs,
// sorted by key. The isolation label is refused: only isolate and
// release may touch it.
func parseChanges(what string, m map[string]string, isLabel bool) ([]change, error) {
	var out []change
	for k, v := range m {
		c := change{key: k, value: v}
		if strings.HasSuffix(k, "-") {
			c.key, c.remove = strings.TrimSuffix(k, "-"), true
			if v != "" {
				return nil, invalid(fmt.Sprintf("%s %s: a key ending in - removes it and takes no value", what, quote(k)))
			}
		}
		if errs := validation.IsQualifiedName(c.key); len(errs) > 0 {
			return nil, invalid(fmt.Sprintf("%s key %s: %s", what, quote(c.key), errs[0]))
		}
		if c.key == IsolationLabel {
			return nil, invalid(fmt.Sprintf("%s %s is kept by isolate and release: use those", what, IsolationLabel))
		}
		if isLabel && !c.remove {
			if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
				return nil, invalid(fmt.Sprintf("label %s value %s: %s", c.key, quote(v), errs[0]))
			}
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out, nil
}

// quote quotes s for a message, cut short when long.
func quote(s string) string {
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return fmt.Sprintf("%q", s)
}
