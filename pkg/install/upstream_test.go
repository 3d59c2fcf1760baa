package install_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/helm"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/images"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/install"
)

// upstreamCharts returns options that install the upstream NATS and Falco
// charts from the folder next to the checkout, or skips the test (fails
// it with FALCO_PHANTOM_REQUIRE_UPSTREAM=1, as CI sets).
func upstreamCharts(t *testing.T) install.Options {
	t.Helper()
	u := images.UpstreamOf(filepath.Join("..", ".."))
	if missing := u.Missing(); len(missing) > 0 {
		if os.Getenv("FALCO_PHANTOM_REQUIRE_UPSTREAM") != "" {
			t.Fatalf("FALCO_PHANTOM_REQUIRE_UPSTREAM=1: %v", missing)
		}
		t.Skipf("no upstream charts: %v", missing)
	}
	o := install.Defaults()
	o.MockPhantom, o.ImageTag = true, "0.1.0"
	o.NATSChart, o.FalcoChart = helm.Chart{Ref: u.NATSChart()}, helm.Chart{Ref: u.FalcoChart()}
	return o
}

// objects are the rendered objects of one release, by kind/name.
type objects map[string]map[string]any

func render(t *testing.T, o install.Options, c install.Component) objects {
	t.Helper()
	p, err := install.NewPlan(context.Background(), o, install.Offline)
	if err != nil {
		t.Fatal(err)
	}
	r := p.Release(c)
	if r == nil {
		t.Fatalf("the plan has no release of %s", c)
	}
	manifest, err := helm.New(nil, nil).Render(context.Background(), r.Request)
	if err != nil {
		t.Fatal(err)
	}
	out := objects{}
	dec := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(manifest)))
	for {
		doc, err := dec.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		var obj map[string]any
		if err := yaml.Unmarshal(doc, &obj); err != nil || obj == nil {
			continue
		}
		out[str(obj, "kind")+"/"+str(obj, "metadata", "name")] = obj
	}
}

// get walks maps and lists ("0" is a list index).
func get(v any, path ...string) any {
	for _, p := range path {
		switch x := v.(type) {
		case map[string]any:
			v = x[p]
		case []any:
			i := 0
			for _, c := range p {
				i = i*10 + int(c-'0')
			}
			if i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

func str(v any, path ...string) string {
	s, _ := get(v, path...).(string)
	return s
}

func (o objects) must(t *testing.T, key string) map[string]any {
	t.Helper()
	obj, ok := o[key]
	if !ok {
		keys := make([]string, 0, len(o))
		for k := range o {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		t.Fatalf("no %s among %v", key, keys)
	}
	return obj
}

// images lists the images of every workload's containers.
func (o objects) images() []string {
	var out []string
	for _, obj := range o {
		switch str(obj, "kind") {
		case "Deployment", "StatefulSet", "DaemonSet":
			for _, list := range []string{"containers", "initContainers"} {
				cs, _ := get(obj, "spec", "template", "spec", list).([]any)
				for _, c := range cs {
					out = append(out, str(c, "image"))
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// The keys install sets are keys the real charts read: each shows in what
// they render.
func TestUpstreamChartsTakeInstallsValues(t *testing.T) {
	t.Parallel()
	o := upstreamCharts(t)

	nats := render(t, o, install.NATS)
	sts := nats.must(t, "StatefulSet/nats")
	if claim := get(sts, "spec", "volumeClaimTemplates", "0", "spec", "resources", "requests", "storage"); claim != "10Gi" {
		t.Errorf("NATS's JetStream claim is %v, want 10Gi", claim)
	}
	conf := str(nats.must(t, "ConfigMap/nats-config"), "data", "nats.conf")
	if !strings.Contains(conf, `"jetstream"`) || !strings.Contains(conf, `"store_dir": "/data"`) || strings.Contains(conf, `"cluster"`) {
		t.Errorf("nats.conf, want JetStream on /data and no cluster:\n%s", conf)
	}
	for key := range nats {
		if strings.Contains(key, "box") {
			t.Errorf("nats-box is rendered (%s): install turns it off", key)
		}
	}

	falco := render(t, o, install.Falco)
	ds := falco.must(t, "DaemonSet/falco")
	if tty := get(ds, "spec", "template", "spec", "containers", "0", "tty"); tty != true {
		t.Errorf("Falco's container tty = %v, want true (Falco's stdout is flushed only on a terminal)", tty)
	}
	var cfg struct {
		JSONOutput bool `json:"json_output"`
		HTTPOutput struct {
			Enabled bool   `json:"enabled"`
			URL     string `json:"url"`
		} `json:"http_output"`
		Engine struct {
			Kind string `json:"kind"`
		} `json:"engine"`
	}
	if err := yaml.Unmarshal([]byte(str(falco.must(t, "ConfigMap/falco"), "data", "falco.yaml")), &cfg); err != nil {
		t.Fatal(err)
	}
	if !cfg.JSONOutput || !cfg.HTTPOutput.Enabled || cfg.HTTPOutput.URL != "http://falco-falcosidekick:2801" {
		t.Errorf("falco.yaml: json_output %v, http_output %+v; want JSON to falcosidekick", cfg.JSONOutput, cfg.HTTPOutput)
	}
	hostport, _ := base64.StdEncoding.DecodeString(str(falco.must(t, "Secret/falco-falcosidekick"), "data", "NATS_HOSTPORT"))
	if want := "nats://nats.falco-phantom.svc.cluster.local:4222"; string(hostport) != want {
		t.Errorf("falcosidekick's NATS_HOSTPORT = %q, want %q", hostport, want)
	}
	for key := range falco {
		if strings.HasPrefix(key, "ClusterRole") {
			t.Errorf("the Falco chart renders %s with install's values", key)
		}
	}

	// A JetStream cluster, and every image from a mirror: with driver
	// auto, the driver loader and falcoctl too.
	o.NATSReplicas, o.ImageRegistry = 3, "registry.internal:5000"
	nats, falco = render(t, o, install.NATS), render(t, o, install.Falco)
	if n := get(nats.must(t, "StatefulSet/nats"), "spec", "replicas"); n != 3.0 && n != int64(3) && n != 3 {
		t.Errorf("NATS replicas = %v, want 3", n)
	}
	if conf := str(nats.must(t, "ConfigMap/nats-config"), "data", "nats.conf"); !strings.Contains(conf, `"cluster"`) {
		t.Errorf("nats.conf of three servers has no cluster block:\n%s", conf)
	}
	all := append(nats.images(), falco.images()...)
	all = append(all, render(t, o, install.Forwarder).images()...)
	if joined := strings.Join(all, " "); !strings.Contains(joined, "falco-driver-loader") || !strings.Contains(joined, "falcoctl") {
		t.Errorf("images with driver auto: %v, want the driver loader and falcoctl among them", all)
	}
	for _, img := range all {
		if !strings.HasPrefix(img, "registry.internal:5000/") {
			t.Errorf("image %s is not from --image-registry (all: %v)", img, all)
		}
	}
	o.FalcoDriver = "modern_ebpf"
	falco = render(t, o, install.Falco)
	if err := yaml.Unmarshal([]byte(str(falco.must(t, "ConfigMap/falco"), "data", "falco.yaml")), &cfg); err != nil || cfg.Engine.Kind != "modern_ebpf" {
		t.Errorf("falco.yaml engine.kind = %q (%v), want modern_ebpf", cfg.Engine.Kind, err)
	}
	for _, img := range falco.images() {
		if strings.Contains(img, "driver-loader") {
			t.Errorf("driver modern_ebpf runs the driver loader (%s)", img)
		}
	}
}

// KEDA reads NATS's monitoring port, which the NATS chart serves on its
// headless Service only (the client Service has 4222 alone); for a
// JetStream cluster KEDA asks each server by <pod>.<endpoint>, which the
// headless Service's DNS answers.
func TestKEDAFindsTheMonitoringPortOfTheUpstreamNATS(t *testing.T) {
	t.Parallel()
	o := upstreamCharts(t)
	o.KEDA, o.NATSReplicas = true, 3
	p, err := install.NewPlan(context.Background(), o, install.Offline)
	if err != nil {
		t.Fatal(err)
	}
	endpoint := get(p.Release(install.Forwarder).Request.Values, "keda", "natsMonitoringEndpoint")
	if want := "nats-headless.falco-phantom.svc.cluster.local:8222"; endpoint != want {
		t.Fatalf("KEDA's endpoint = %v, want %s", endpoint, want)
	}
	nats := render(t, o, install.NATS)
	ports, _ := get(nats.must(t, "Service/nats-headless"), "spec", "ports").([]any)
	found := false
	for _, port := range ports {
		if n := get(port, "port"); n == 8222.0 || n == int64(8222) || n == 8222 {
			found = true
		}
	}
	if !found {
		t.Errorf("Service nats-headless has no port 8222: %v", ports)
	}
}
