package charts_test

import (
	"context"
	"strings"
	"testing"

	"github.com/falco-phantom/kubectl-falco-phantom/charts"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/helm"
)

// The forwarder chart, used on its own, refuses URLs with credentials in
// them: they would be stored in clear in the Deployment.
func TestForwarderChartRefusesCredentialsInURLs(t *testing.T) {
	t.Parallel()
	render := func(phantomURL, natsURL string) (string, error) {
		return helm.New(nil, nil).Render(context.Background(), helm.Request{
			Name: "falco-phantom-forwarder", Namespace: "falco-phantom",
			Chart: helm.Chart{Files: charts.Forwarder()},
			Values: map[string]any{
				"phantom": map[string]any{"url": phantomURL, "existingSecret": "soar"},
				"nats":    map[string]any{"url": natsURL},
			},
		})
	}
	if _, err := render("https://soar.example.com", "nats://nats:4222"); err != nil {
		t.Fatalf("plain URLs: %v", err)
	}
	for _, urls := range [][2]string{
		{"https://admin:s3cret@soar.example.com", "nats://nats:4222"},
		{"https://soar.example.com", "nats://user:s3cret@nats:4222"},
	} {
		_, err := render(urls[0], urls[1])
		if err == nil || !strings.Contains(err.Error(), "must not hold credentials") {
			t.Errorf("%v: err %v, want a refusal", urls, err)
		} else if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("the refusal repeats the password: %v", err)
		}
	}
}
