package forwarder

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/falco"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/phantom"
)

// Bounds on what an event may put into SOAR. Every value comes from the
// watched workload and may be hostile; values are kept intact up to these
// sizes and cut with a marker beyond them.
const (
	maxNameLen        = 256
	maxDescriptionLen = 16 << 10
	maxCEFValueLen    = 8 << 10
	maxTags           = 32
	maxTagLen         = 128
	// maxRawData is the largest raw event kept in an artifact's data.
	maxRawData = 256 << 10
)

// Severity maps a Falco priority to a SOAR severity the way the original
// integration did: Emergency, Alert and Critical are high; Error and
// Warning medium; Notice, Informational and Debug low.
func Severity(p falco.Priority) string {
	switch {
	case p >= falco.PriorityCritical:
		return "high"
	case p >= falco.PriorityWarning:
		return "medium"
	default:
		return "low"
	}
}

// cefField maps a Falco output field to a CEF key and its SOAR "contains" types.
type cefField struct {
	falco, cef string
	contains   []string
}

// cefFields are the CEF keys an artifact carries, in display order.
var cefFields = []cefField{
	{"k8s.ns.name", "kubernetesNamespace", []string{"k8s namespace"}},
	{"k8s.pod.name", "kubernetesPodName", []string{"k8s pod name"}},
	{"container.id", "containerId", []string{"container id"}},
	{"container.name", "containerName", []string{"container name"}},
	{"proc.name", "processName", []string{"process name"}},
	{"proc.pname", "parentProcessName", []string{"process name"}},
	{"proc.exepath", "processPath", []string{"file path"}},
	{"proc.cmdline", "commandLine", []string{"command line"}},
	{"proc.tty", "terminal", nil},
	{"user.name", "userName", []string{"user name"}},
	{"user.uid", "userId", nil},
	{"fd.name", "fileName", []string{"file name"}},
	{"evt.type", "eventType", nil},
}

// Artifact turns one event into a SOAR artifact. raw is the event as it
// arrived; it is kept in the artifact's data when not too large.
func Artifact(ev *falco.Event, raw []byte) phantom.Artifact {
	return artifact(ev, raw, ev.ID(), json.Valid(raw))
}

// artifact is Artifact for an event whose ID is known; valid says whether
// raw is valid JSON (it is when falco.Parse accepted it).
func artifact(ev *falco.Event, raw []byte, id string, valid bool) phantom.Artifact {
	cef := map[string]any{
		"falcoRule":     bound(ev.Rule, maxCEFValueLen),
		"falcoPriority": ev.Priority.String(),
		"falcoEventId":  id,
		"falcoOutput":   bound(ev.Output, maxCEFValueLen),
		"eventTime":     phantom.FormatTime(ev.Time),
	}
	types := map[string][]string{}
	if ev.Hostname != "" {
		cef["sourceHostName"] = bound(ev.Hostname, maxCEFValueLen)
		types["sourceHostName"] = []string{"host name"}
	}
	if ev.Source != "" {
		cef["falcoSource"] = bound(ev.Source, maxCEFValueLen)
	}
	for _, f := range cefFields {
		v := ev.OutputFields.String(f.falco)
		if v == "" {
			continue
		}
		cef[f.cef] = bound(v, maxCEFValueLen)
		if f.contains != nil {
			types[f.cef] = f.contains
		}
	}
	if image := imageOf(ev); image != "" {
		cef["containerImage"] = bound(image, maxCEFValueLen)
		types["containerImage"] = []string{"container image"}
	}
	return phantom.Artifact{
		Name:                 bound(ev.Rule, maxNameLen),
		Label:                "falco",
		Type:                 "falco event",
		Severity:             Severity(ev.Priority),
		SourceDataIdentifier: ArtifactID(id),
		StartTime:            phantom.FormatTime(ev.Time),
		CEF:                  cef,
		CEFTypes:             types,
		Data:                 rawData(ev, raw, id, valid),
		Tags:                 boundTags(ev.Tags),
	}
}

// ArtifactID is the source_data_identifier of the artifact of the event
// whose ID is eventID: the same on every resend and redelivery, which is
// how SOAR recognises a duplicate.
func ArtifactID(eventID string) string { return "falco-event-" + eventID }

// Container is the case an incident opens: named after the rule, described
// by the first alert's output, starting at its time.
func Container(ev *falco.Event, raw []byte, label, sdi string) *phantom.Container {
	return &phantom.Container{
		Name:                 bound(ev.Rule, maxNameLen),
		Label:                label,
		Description:          bound(ev.Output, maxDescriptionLen),
		Severity:             Severity(ev.Priority),
		Status:               "new",
		SourceDataIdentifier: sdi,
		StartTime:            phantom.FormatTime(ev.Time),
		Data:                 rawData(ev, raw, ev.ID(), json.Valid(raw)),
		Tags:                 boundTags(ev.Tags),
	}
}

func imageOf(ev *falco.Event) string {
	repo := ev.OutputFields.String("container.image.repository")
	if repo == "" {
		return ev.OutputFields.String("container.image")
	}
	if tag := ev.OutputFields.String("container.image.tag"); tag != "" {
		return repo + ":" + tag
	}
	return repo
}

// rawData keeps the event as it arrived (a JSON object when Parse accepted
// it: valid), or a note when it is too large to store or not JSON.
func rawData(ev *falco.Event, raw []byte, id string, valid bool) json.RawMessage {
	if len(raw) <= maxRawData && valid {
		return raw
	}
	note, _ := json.Marshal(map[string]any{
		"truncated":  true,
		"size":       len(raw),
		"event_id":   id,
		"rule":       bound(ev.Rule, maxNameLen),
		"output_cut": bound(ev.Output, 4096),
	})
	return note
}

func boundTags(tags []string) []string {
	if len(tags) > maxTags {
		tags = tags[:maxTags]
	}
	out := make([]string, 0, len(tags))
	for _, t := range tags {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, bound(t, maxTagLen))
		}
	}
	return out
}

// bound cuts s to at most n bytes on a rune boundary and says how much was cut.
func bound(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf("…[%d bytes cut]", len(s)-cut)
}
