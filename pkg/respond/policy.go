package respond

import (
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// AllNamespaces in Policy.Namespaces allows every namespace but the
// protected ones.
const AllNamespaces = "*"

// Policy says where and what a responder may do.
type Policy struct {
	// Namespaces the actions may happen in; AllNamespaces for all but
	// Protected.
	Namespaces []string
	// Protected namespaces are never covered by AllNamespaces: they are
	// allowed only when named in Namespaces.
	Protected []string
	// Actions allowed; nil allows every action.
	Actions []Action
}

// ProtectedNamespaces are the namespaces AllNamespaces never covers: the
// install namespace, where the pipeline runs, and kube-system.
func ProtectedNamespaces(installNamespace string) []string {
	if installNamespace == "" || installNamespace == "kube-system" {
		return []string{"kube-system"}
	}
	return []string{installNamespace, "kube-system"}
}

// Validate checks the names of the policy.
func (p Policy) Validate() error {
	if len(p.Namespaces) == 0 {
		return fmt.Errorf("no namespace allowed: list the namespaces to act in, or %q for all but %s", AllNamespaces, strings.Join(p.Protected, " and "))
	}
	for _, ns := range p.Namespaces {
		if ns == AllNamespaces {
			continue
		}
		if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
			return fmt.Errorf("namespace %q: %s", ns, errs[0])
		}
	}
	for _, a := range p.Actions {
		if _, err := ParseAction(string(a)); err != nil {
			return err
		}
	}
	return nil
}

// NamespaceAllowed tells whether actions may happen in ns.
func (p Policy) NamespaceAllowed(ns string) bool {
	if slices.Contains(p.Namespaces, ns) {
		return true
	}
	return p.AllNamespaces() && !slices.Contains(p.Protected, ns)
}

// AllNamespaces tells whether the policy covers every namespace but the
// protected ones.
func (p Policy) AllNamespaces() bool { return slices.Contains(p.Namespaces, AllNamespaces) }

// ActionAllowed tells whether a may be done.
func (p Policy) ActionAllowed(a Action) bool {
	return p.Actions == nil || slices.Contains(p.Actions, a)
}

func (p Policy) actions() []Action {
	if p.Actions == nil {
		return Actions()
	}
	return p.Actions
}

// describeNamespaces says where the policy allows actions, for messages.
func (p Policy) describeNamespaces() string {
	var named []string
	for _, ns := range p.Namespaces {
		if ns != AllNamespaces {
			named = append(named, ns)
		}
	}
	if p.AllNamespaces() {
		s := "every namespace but " + strings.Join(p.Protected, " and ")
		if len(named) > 0 {
			s += ", and " + strings.Join(named, ", ")
		}
		return s
	}
	return strings.Join(named, ", ")
}

func (p Policy) refuse(ns string) *Error {
	return &Error{Code: NamespaceNotAllowed, Message: fmt.Sprintf("namespace %s is not allowed: the actions may happen in %s", ns, p.describeNamespaces())}
}
