package install

import (
	"net/url"

	"github.com/falco-phantom/kubectl-falco-phantom/charts"
	"github.com/falco-phantom/kubectl-falco-phantom/internal/fields"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/helm"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/images"
)

// settings are the options with what the plan settled from them and from
// the cluster: where NATS and SOAR are, and how the forwarder
// authenticates. The releases' values and the Kubeless objects come from
// them alone.
type settings struct {
	Options
	natsURL, phantomURL string
	// tokenAuth: the forwarder sends a token (else user and password).
	tokenAuth bool
	// credentialsSecret holds the forwarder's SOAR credentials.
	credentialsSecret string
	// caSecret and natsCredsSecret are set when their data was given.
	caSecret, natsCredsSecret string
	// responderTLS holds the responder's certificate (with Responder).
	responderTLS string
}

// releases lists the releases to apply, in install order.
func (s *settings) releases() ([]Release, error) {
	var out []Release
	add := func(c Component, chart helm.Chart, values map[string]any) {
		out = append(out, Release{Component: c, Request: helm.Request{
			Name: c.Release(), Namespace: s.Namespace, Chart: chart, Values: values, Timeout: s.Timeout,
		}})
	}
	if s.NATSURL == "" {
		values, err := s.natsValues()
		if err != nil {
			return nil, err
		}
		add(NATS, s.NATSChart, values)
	}
	if s.MockPhantom {
		add(MockPhantom, helm.Chart{Files: charts.MockPhantom()}, s.mockValues())
	}
	if s.Runtime != RuntimeKubeless {
		add(Forwarder, helm.Chart{Files: charts.Forwarder()}, s.forwarderValues())
	}
	if s.Responder {
		values, err := s.responderValues()
		if err != nil {
			return nil, err
		}
		add(Responder, helm.Chart{Files: charts.Responder()}, values)
	}
	if !s.SkipFalco {
		values, err := s.falcoValues()
		if err != nil {
			return nil, err
		}
		add(Falco, s.FalcoChart, values)
	}
	return out, nil
}

// imageRegistry is the registry of this project's images.
func (s *settings) imageRegistry() string {
	if s.ImageRegistry != "" {
		return s.ImageRegistry
	}
	return images.DefaultRegistry
}

func (s *settings) natsValues() (map[string]any, error) {
	cluster := map[string]any{"enabled": s.NATSReplicas > 1}
	if s.NATSReplicas > 1 {
		cluster["replicas"] = s.NATSReplicas
	}
	v := map[string]any{
		"config": map[string]any{
			"jetstream": map[string]any{"enabled": true, "fileStore": map[string]any{"pvc": map[string]any{"size": "10Gi"}}},
			"cluster":   cluster,
		},
		// The NetworkPolicy lets only the forwarder and falcosidekick in;
		// nats-box would be locked out anyway.
		"natsBox": map[string]any{"enabled": false},
	}
	if s.ImageRegistry != "" {
		v["global"] = map[string]any{"image": map[string]any{"registry": s.ImageRegistry}}
	}
	if err := helm.SetValues(v, s.NATSSet); err != nil {
		return nil, fields.Errorf("{NATSSet}: %v", err)
	}
	// The forwarder consumes a JetStream stream: NATS without it would
	// install, and deliver nothing.
	if js, _ := lookup(v, "config", "jetstream", "enabled").(bool); !js {
		return nil, fields.Errorf("{NATSSet} must leave config.jetstream.enabled true: the forwarder consumes a JetStream stream")
	}
	return v, nil
}

// lookup returns the value at a path of nested maps, or nil.
func lookup(v map[string]any, path ...string) any {
	var cur any = v
	for _, key := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[key]
	}
	return cur
}

func (s *settings) falcoValues() (map[string]any, error) {
	sidekick := map[string]any{
		"enabled": true,
		"config":  map[string]any{"nats": map[string]any{"hostport": s.natsURL}},
	}
	v := map[string]any{
		"driver":        map[string]any{"kind": s.FalcoDriver},
		"tty":           true,
		"falcosidekick": sidekick,
	}
	if r := s.ImageRegistry; r != "" {
		v["image"] = map[string]any{"registry": r}
		v["driver"].(map[string]any)["loader"] = map[string]any{"initContainer": map[string]any{"image": map[string]any{"registry": r}}}
		v["falcoctl"] = map[string]any{"image": map[string]any{"registry": r}}
		sidekick["image"] = map[string]any{"registry": r}
	}
	if err := helm.SetValues(v, s.FalcoSet); err != nil {
		return nil, fields.Errorf("{FalcoSet}: %v", err)
	}
	return v, nil
}

func (s *settings) mockValues() map[string]any {
	v := map[string]any{
		"image":          map[string]any{"registry": s.imageRegistry(), "repository": images.MockPhantomRepo, "tag": s.ImageTag},
		"existingSecret": SecretMock,
		"labels":         []any{s.PhantomLabel},
		"persistence":    map[string]any{"enabled": s.MockPersistence},
	}
	if p := s.mockPlaybooks(); p != nil {
		v["playbooks"] = p
	}
	return v
}

// forwarderAuth is which keys of the SOAR credentials Secret the
// forwarder and the responder read.
func (s *settings) forwarderAuth() string {
	if s.tokenAuth {
		return "token"
	}
	return "basic"
}

func (s *settings) forwarderValues() map[string]any {
	auth := s.forwarderAuth()
	streamReplicas := 1
	if s.NATSReplicas >= 3 {
		streamReplicas = 3
	}
	v := map[string]any{
		"image":        map[string]any{"registry": s.imageRegistry(), "repository": images.ForwarderRepo, "tag": s.ImageTag},
		"replicaCount": s.ForwarderReplicas,
		"phantom": map[string]any{
			"url": s.phantomURL, "label": s.PhantomLabel, "verifySSL": !s.InsecureSkipTLSVerify,
			"existingSecret": s.credentialsSecret, "auth": auth,
		},
		"nats":      map[string]any{"url": s.natsURL, "subject": s.Subjects[0], "streamReplicas": streamReplicas},
		"forwarder": map[string]any{"groupWindow": s.GroupWindow.String()},
		"networkPolicy": map[string]any{
			"enabled":       s.NATSURL == "",
			"natsPodLabels": map[string]any{"app.kubernetes.io/name": "nats", "app.kubernetes.io/instance": NATS.Release()},
		},
	}
	if s.caSecret != "" {
		v["phantom"].(map[string]any)["caSecret"] = s.caSecret
	}
	if s.natsCredsSecret != "" {
		v["nats"].(map[string]any)["credsSecret"] = s.natsCredsSecret
	}
	if s.KEDA {
		v["keda"] = map[string]any{"enabled": true, "natsMonitoringEndpoint": s.natsMonitoringEndpoint()}
	}
	return v
}

// natsMonitoringEndpoint is where KEDA reads the consumer's backlog: NATS's
// monitoring port. The NATS chart serves it on its headless Service only
// (the client Service has the client port alone), and KEDA asks each
// server of a JetStream cluster as <server>.<endpoint>, a name only the
// headless Service's DNS answers. For a NATS given by URL, its host.
func (s *settings) natsMonitoringEndpoint() string {
	if s.NATSURL == "" {
		return NATS.Release() + "-headless." + s.Namespace + ".svc.cluster.local:8222"
	}
	host := "nats"
	if u, err := url.Parse(s.natsURL); err == nil {
		host = u.Hostname()
	}
	return host + ":8222"
}
