package respond

import (
	"context"
	"strings"
)

func (a *act) label(ctx context.Context) error {
	changes, _ := parseChanges("label", a.req.Labels, true)
	return a.setMeta(ctx, "labels", a.pod.Labels, changes)
}

func (a *act) annotate(ctx context.Context) error {
	changes, _ := parseChanges("annotation", a.req.Annotations, false)
	return a.setMeta(ctx, "annotations", a.pod.Annotations, changes)
}

// setMeta applies the changes that are not in place yet.
func (a *act) setMeta(ctx context.Context, field string, have map[string]string, changes []change) error {
	patch := map[string]*string{}
	var did []string
	for _, c := range changes {
		v, ok := have[c.key]
		switch {
		case c.remove && ok:
			patch[c.key] = nil
			did = append(did, c.key+" removed")
		case !c.remove && (!ok || v != c.value):
			patch[c.key] = ptr(c.value)
			did = append(did, c.key+"="+c.value)
		}
	}
	what := strings.TrimSuffix(field, "s")
	if len(patch) == 0 {
		return a.done(false, "pod %s already has those %s", a.name(), field)
	}
	if err := a.patchMeta(ctx, field, patch); err != nil {
		return err
	}
	return a.done(true, "pod %s %s: %s", a.name(), past(what), strings.Join(did, ", "))
}

func past(what string) string {
	if what == "label" {
		return "labelled"
	}
	return "annotated"
}
