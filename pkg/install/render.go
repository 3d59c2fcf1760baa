package install

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"sigs.k8s.io/yaml"
)

// Render returns every object Apply would apply for p, as YAML documents:
// the namespace, the Secrets (their values redacted, CA certificates
// aside), the install record, the Kubeless objects and each release's
// manifest, rendered without a cluster.
func (in *Installer) Render(ctx context.Context, p *Plan) (string, error) {
	objs := []any{namespaceObject(p.Namespace)}
	for _, ps := range p.Secrets {
		if ps.Public {
			objs = append(objs, ps.Secret)
		} else {
			objs = append(objs, redacted(ps.Secret))
		}
	}
	cm, err := stateConfigMap(p.Namespace, p.Record)
	if err != nil {
		return "", err
	}
	objs = append(objs, cm)
	if p.Kubeless != nil {
		for _, crd := range p.Kubeless.CRDs {
			objs = append(objs, crd)
		}
		for _, obj := range p.Kubeless.Objects {
			objs = append(objs, obj.Object)
		}
	}
	var docs []string
	for _, obj := range objs {
		doc, err := document(obj)
		if err != nil {
			return "", err
		}
		docs = append(docs, doc)
	}
	for _, r := range p.Releases {
		manifest, err := in.Helm.Render(ctx, r.Request)
		if err != nil {
			return "", releaseError(r, err)
		}
		// Upstream charts may template Secrets of their own (falcosidekick's
		// holds its outputs' settings): their values are not printed either.
		manifest, err = redactSecrets(manifest)
		if err != nil {
			return "", fmt.Errorf("%s: %w", r.Component, err)
		}
		docs = append(docs, fmt.Sprintf("# Release %s/%s (%s)\n%s", p.Namespace, r.Request.Name, r.Component, manifest))
	}
	return strings.Join(docs, "\n---\n") + "\n", nil
}

// document is obj as one YAML document, without empty status fields.
func document(obj any) (string, error) {
	// Through JSON to a map, so that empty status fields are left out.
	j, err := json.Marshal(obj)
	if err != nil {
		return "", err
	}
	var m map[string]any
	if err := json.Unmarshal(j, &m); err != nil {
		return "", err
	}
	delete(m, "status")
	b, err := yaml.Marshal(m)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// redactSecrets replaces each value of every Secret in a multi-document
// manifest by Redacted. The other documents are left as they are.
func redactSecrets(manifest string) (string, error) {
	const sep = "\n---\n"
	docs := strings.Split(manifest, sep)
	for i, doc := range docs {
		var m map[string]any
		if err := yaml.Unmarshal([]byte(doc), &m); err != nil || m["kind"] != "Secret" {
			continue
		}
		for _, field := range []string{"data", "stringData"} {
			if values, ok := m[field].(map[string]any); ok {
				for k := range values {
					values[k] = Redacted
				}
			}
		}
		b, err := yaml.Marshal(m)
		if err != nil {
			return "", fmt.Errorf("redact Secret: %w", err)
		}
		// Keep the document marker and the "# Source:" comment.
		var head []string
		for _, line := range strings.Split(doc, "\n") {
			if !strings.HasPrefix(line, "#") && !strings.HasPrefix(line, "---") {
				break
			}
			head = append(head, line)
		}
		docs[i] = strings.Join(append(head, strings.TrimRight(string(b), "\n")), "\n")
	}
	return strings.Join(docs, sep), nil
}
