package falcostandin_test

import (
	"strings"
	"testing"

	falcostandin "github.com/falco-phantom/kubectl-falco-phantom/test/standin/falco"
)

// Audit log lines as kube-apiserver writes them (audit.k8s.io/v1, level
// Metadata) for `kubectl exec`, shortened to the fields that matter.
const (
	execWithTTY = `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a1","stage":"ResponseStarted","requestURI":"/api/v1/namespaces/shop/pods/web-1/exec?command=%2Fbin%2Fsh\u0026command=-c\u0026command=echo+falco-phantom-test-x%3B+sleep+1\u0026container=web\u0026stdout=true\u0026tty=true","verb":"get","objectRef":{"resource":"pods","namespace":"shop","name":"web-1","apiVersion":"v1","subresource":"exec"},"responseStatus":{"metadata":{},"code":101},"requestReceivedTimestamp":"2026-11-27T10:02:03.120000Z"}`
	execNoTTY   = `{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"a2","stage":"ResponseStarted","requestURI":"/api/v1/namespaces/shop/pods/web-1/exec?command=%2Fbin%2Fsh\u0026command=-c\u0026command=id\u0026stdout=true","objectRef":{"resource":"pods","namespace":"shop","name":"web-1","subresource":"exec"}}`
	execBusybox = `{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"a3","stage":"ResponseStarted","requestURI":"/api/v1/namespaces/shop/pods/web-1/exec?command=%2Fbin%2Fbusybox\u0026command=sh\u0026stdout=true\u0026tty=true","objectRef":{"resource":"pods","namespace":"shop","name":"web-1","subresource":"exec"}}`
	logsRequest = `{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"a4","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/shop/pods/web-1/log","objectRef":{"resource":"pods","namespace":"shop","name":"web-1","subresource":"log"}}`
	execDenied  = `{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"a5","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/shop/pods/web-1/exec?command=sh\u0026tty=true","objectRef":{"resource":"pods","namespace":"shop","name":"web-1","subresource":"exec"},"responseStatus":{"code":403}}`
)

func TestOnlyShellsWithATerminalAreAlerts(t *testing.T) {
	t.Parallel()
	x, ok := falcostandin.ParseExec([]byte(execWithTTY))
	if !ok || x.Namespace != "shop" || x.Pod != "web-1" || x.Container != "web" || strings.Join(x.Command, "|") != "/bin/sh|-c|echo falco-phantom-test-x; sleep 1" {
		t.Fatalf("exec with a terminal = %+v, %v", x, ok)
	}
	// As Falco's rule: no terminal, or a process not named like a shell
	// (busybox sh), is no alert; neither are other requests.
	for name, line := range map[string]string{"no tty": execNoTTY, "busybox sh": execBusybox, "logs": logsRequest, "denied": execDenied, "garbage": "{"} {
		if _, ok := falcostandin.ParseExec([]byte(line)); ok {
			t.Errorf("%s was taken for a shell with a terminal", name)
		}
	}
}

func TestAlertIsWhatFalcoEmits(t *testing.T) {
	t.Parallel()
	x, _ := falcostandin.ParseExec([]byte(execWithTTY))
	c := falcostandin.Container{ID: "0c30aac0e6f0d3b1c5e9f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f", Name: "web", Image: "docker.io/library/nginx:1.27"}
	ev := falcostandin.Alert(x, c, "node-1")
	f := ev.OutputFields
	if ev.Rule != "Terminal shell in container" || ev.Subject() != "falco.notice.terminal_shell_in_container" ||
		f.String("container.id") != "0c30aac0e6f0" || f.String("proc.name") != "sh" ||
		f.String("proc.cmdline") != "sh -c echo falco-phantom-test-x; sleep 1" || f.String("k8s.pod.name") != "web-1" ||
		f.String("container.image.repository") != "docker.io/library/nginx" || ev.Hostname != "node-1" {
		t.Errorf("alert = %+v", ev)
	}
}
