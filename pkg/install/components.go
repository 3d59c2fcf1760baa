package install

import (
	"fmt"
	"net/url"

	"github.com/falco-phantom/kubectl-falco-phantom/charts"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/helm"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/images"
)

// Component is one part of the pipeline, installed as one Helm release.
type Component struct {
	// Name is what people see: nats, mockphantom, forwarder, falco.
	Name    string
	Request helm.Request
}

// components lists the releases to apply, in order: NATS first so that
// nothing waits for it, Falco last so that its first alerts find the
// pipeline ready.
func (o *Options) components() ([]Component, error) {
	var out []Component
	if o.NATSURL == "" {
		out = append(out, Component{Name: "nats", Request: helm.Request{
			Name: ReleaseNATS, Namespace: o.Namespace, Chart: o.NATSChart.chart(), Values: o.natsValues(),
		}})
	}
	if o.MockPhantom {
		out = append(out, Component{Name: "mockphantom", Request: helm.Request{
			Name: ReleaseMock, Namespace: o.Namespace, Chart: helm.Chart{Files: charts.MockPhantom()}, Values: o.mockValues(),
		}})
	}
	if o.Runtime != RuntimeKubeless {
		out = append(out, Component{Name: "forwarder", Request: helm.Request{
			Name: ReleaseForwarder, Namespace: o.Namespace, Chart: helm.Chart{Files: charts.Forwarder()}, Values: o.forwarderValues(),
		}})
	}
	if !o.SkipFalco {
		values, err := o.falcoValues()
		if err != nil {
			return nil, err
		}
		out = append(out, Component{Name: "falco", Request: helm.Request{
			Name: ReleaseFalco, Namespace: o.Namespace, Chart: o.FalcoChart.chart(), Values: values,
		}})
	}
	for i := range out {
		out[i].Request.Timeout = o.Timeout
	}
	return out, nil
}

func (c ChartSource) chart() helm.Chart {
	return helm.Chart{Ref: c.Ref, RepoURL: c.RepoURL, Version: c.Version}
}

func (o *Options) natsValues() map[string]any {
	cluster := map[string]any{"enabled": o.NATSReplicas > 1}
	if o.NATSReplicas > 1 {
		cluster["replicas"] = o.NATSReplicas
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
	if o.ImageRegistry != "" {
		v["global"] = map[string]any{"image": map[string]any{"registry": o.ImageRegistry}}
	}
	return v
}

func (o *Options) falcoValues() (map[string]any, error) {
	sidekick := map[string]any{
		"enabled": true,
		"config":  map[string]any{"nats": map[string]any{"hostport": o.natsURL()}},
	}
	v := map[string]any{
		"driver":        map[string]any{"kind": o.FalcoDriver},
		"tty":           true,
		"falcosidekick": sidekick,
	}
	if r := o.ImageRegistry; r != "" {
		v["image"] = map[string]any{"registry": r}
		v["driver"].(map[string]any)["loader"] = map[string]any{"initContainer": map[string]any{"image": map[string]any{"registry": r}}}
		v["falcoctl"] = map[string]any{"image": map[string]any{"registry": r}}
		sidekick["image"] = map[string]any{"registry": r}
	}
	if err := helm.SetValues(v, o.FalcoSet); err != nil {
		return nil, fmt.Errorf("--falco-set: %w", err)
	}
	return v, nil
}

func (o *Options) mockValues() map[string]any {
	return map[string]any{
		"image":          map[string]any{"registry": o.imageRegistry(), "repository": images.MockPhantomRepo, "tag": o.ImageTag},
		"existingSecret": SecretMock,
		"labels":         []any{o.PhantomLabel},
		"persistence":    map[string]any{"enabled": o.MockPersistence},
	}
}

func (o *Options) forwarderValues() map[string]any {
	auth := "basic"
	if o.tokenAuth() {
		auth = "token"
	}
	secret := SecretSOAR
	if o.PhantomSecret != "" {
		secret = o.PhantomSecret
	}
	streamReplicas := 1
	if o.NATSReplicas >= 3 {
		streamReplicas = 3
	}
	v := map[string]any{
		"image":        map[string]any{"registry": o.imageRegistry(), "repository": images.ForwarderRepo, "tag": o.ImageTag},
		"replicaCount": o.ForwarderReplicas,
		"phantom": map[string]any{
			"url": o.phantomURL(), "label": o.PhantomLabel, "verifySSL": !o.InsecureSkipTLSVerify,
			"existingSecret": secret, "auth": auth,
		},
		"nats":      map[string]any{"url": o.natsURL(), "subject": o.Subject, "streamReplicas": streamReplicas},
		"forwarder": map[string]any{"groupWindow": o.GroupWindow.String()},
		"networkPolicy": map[string]any{
			"enabled":       o.NATSURL == "",
			"natsPodLabels": map[string]any{"app.kubernetes.io/name": "nats", "app.kubernetes.io/instance": ReleaseNATS},
		},
	}
	if len(o.PhantomCA) > 0 {
		v["phantom"].(map[string]any)["caSecret"] = SecretSOARCA
	}
	if len(o.NATSCreds) > 0 {
		v["nats"].(map[string]any)["credsSecret"] = SecretNATSCreds
	}
	if o.KEDA {
		host := "nats"
		if u, err := url.Parse(o.natsURL()); err == nil {
			host = u.Hostname()
		}
		v["keda"] = map[string]any{"enabled": true, "natsMonitoringEndpoint": host + ":8222"}
	}
	return v
}
