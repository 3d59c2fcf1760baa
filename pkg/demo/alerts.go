package demo

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/falco"
)

// AlertSpec describes a made-up alert: which rule fired, where, and for
// what command. Empty fields take the rule's usual values.
type AlertSpec struct {
	Rule      string
	Priority  falco.Priority // 0: the rule's own
	Namespace string
	Pod       string
	Container string
	Image     string // repository:tag
	Node      string
	Command   string // the process's command line
	User      string
	File      string // the file a file rule is about
	Time      time.Time
	// ContainerID is 12 hex digits; empty derives one from the pod.
	ContainerID string
}

// rule is what an alert of one Falco rule looks like: the rule's priority,
// tags and output text, and the process and event fields it carries.
type rule struct {
	priority falco.Priority
	tags     []string
	command  string // usual command line
	evtType  string
	// text is the output after the priority, before the fields Falco
	// appends; it gets the alert's fields.
	text func(a AlertSpec) string
	// fields adds the rule's own output fields.
	fields func(a AlertSpec, f falco.Fields)
}

// Rules the demo knows how to raise, as Falco's rules (falcosecurity/rules)
// name them.
const (
	RuleShell          = falco.ShellRule
	RuleSensitiveFile  = "Read sensitive file untrusted"
	RuleOutbound       = "Unexpected outbound connection destination"
	RulePackageManager = "Launch Package Management Process in Container"
	RuleDropAndExecute = "Drop and execute new binary in container"
)

var rules = map[string]rule{
	RuleSensitiveFile: {
		priority: falco.PriorityWarning, evtType: "openat", command: "cat /etc/shadow",
		tags: []string{"T1555", "container", "filesystem", "host", "maturity_stable", "mitre_credential_access"},
		text: func(a AlertSpec) string {
			return "Sensitive file opened for reading by non-trusted program | file=" + a.File
		},
		fields: func(a AlertSpec, f falco.Fields) {
			f["fd.name"], f["evt.arg.flags"] = a.File, "O_RDONLY"
		},
	},
	RuleOutbound: {
		priority: falco.PriorityNotice, evtType: "connect", command: "nc 203.0.113.50 4444",
		tags: []string{"TA0011", "container", "host", "maturity_sandbox", "mitre_command_and_control", "network"},
		text: func(a AlertSpec) string {
			return "Disallowed outbound connection destination | connection=" + a.File + " fd_type=ipv4 fd_proto=tcp"
		},
		fields: func(a AlertSpec, f falco.Fields) {
			f["fd.name"], f["fd.type"], f["fd.l4proto"] = a.File, "ipv4", "tcp"
		},
	},
	RulePackageManager: {
		priority: falco.PriorityError, evtType: "execve", command: "apk add --no-cache nmap",
		tags: []string{"T1505", "container", "maturity_incubating", "mitre_persistence", "process", "software_mgmt"},
		text: func(AlertSpec) string { return "Package management process launched in container" },
	},
	RuleDropAndExecute: {
		priority: falco.PriorityCritical, evtType: "execve", command: "/tmp/.x/kworker --donate-level 1 -o pool.example.net:3333",
		tags: []string{"T1059", "TA0003", "container", "maturity_stable", "mitre_persistence", "process"},
		text: func(a AlertSpec) string {
			return "Executing binary not part of base image | proc_exe=" + strings.Fields(a.Command)[0] + " proc_sname=sh"
		},
		fields: func(a AlertSpec, f falco.Fields) { f["proc.is_exe_upper_layer"] = true },
	},
}

// Rules lists the rules Alert knows, the shell first.
func Rules() []string {
	out := []string{RuleShell}
	for name := range rules {
		out = append(out, name)
	}
	sort.Strings(out[1:])
	return out
}

// Alert makes the alert Falco raises for a. A rule it does not know gets
// a plain alert with the process fields.
func Alert(a AlertSpec) *falco.Event {
	a = withDefaults(a)
	if a.Rule == RuleShell {
		ev := falco.ShellEvent(falco.ShellSpec{
			Time: a.Time, Hostname: a.Node, ContainerID: a.ContainerID, ContainerName: a.Container,
			Image: repository(a.Image), ImageTag: tag(a.Image), Namespace: a.Namespace, Pod: a.Pod,
			CommandLine: a.Command, User: a.User,
		})
		if a.Priority.Valid() {
			ev.Priority = a.Priority
		}
		return ev
	}
	r, known := rules[a.Rule]
	if !known {
		r = rule{priority: falco.PriorityWarning, evtType: "execve", text: func(a AlertSpec) string { return a.Rule }}
	}
	if a.Priority.Valid() {
		r.priority = a.Priority
	}
	proc := strings.Fields(a.Command + " sh")[0]
	fields := falco.Fields{
		"container.id": a.ContainerID, "container.name": a.Container,
		"container.image.repository": repository(a.Image), "container.image.tag": tag(a.Image),
		"k8s.ns.name": a.Namespace, "k8s.pod.name": a.Pod,
		"evt.type": r.evtType, "evt.time": jsonNumber(a.Time.UnixNano()),
		"proc.cmdline": a.Command, "proc.name": procName(proc), "proc.exepath": exePath(proc), "proc.pname": "sh",
		"user.name": a.User, "user.uid": jsonNumber(0), "user.loginuid": jsonNumber(-1),
	}
	if r.fields != nil {
		r.fields(a, fields)
	}
	output := fmt.Sprintf("%s: %s %s (evt_type=%s user=%s user_uid=0 user_loginuid=-1 process=%s proc_exepath=%s parent=sh command=%s container_id=%s container_name=%s container_image_repository=%s container_image_tag=%s k8s_pod_name=%s k8s_ns_name=%s)",
		a.Time.UTC().Format("15:04:05.000000000"), r.priority, r.text(a), r.evtType, a.User, procName(proc), exePath(proc),
		a.Command, a.ContainerID, a.Container, repository(a.Image), tag(a.Image), a.Pod, a.Namespace)
	return &falco.Event{
		Time: a.Time, Rule: a.Rule, Priority: r.priority, Source: "syscall", Hostname: a.Node,
		Output: output, Tags: r.tags, OutputFields: fields, UUID: uuid.NewString(),
	}
}

// withDefaults fills what a leaves empty.
func withDefaults(a AlertSpec) AlertSpec {
	if a.Rule == "" {
		a.Rule = RuleShell
	}
	if a.Time.IsZero() {
		a.Time = time.Now().UTC()
	}
	if a.Namespace == "" {
		a.Namespace = "shop"
	}
	if a.Pod == "" {
		a.Pod = "web-7c9f8d5b6-x2kqz"
	}
	if a.Container == "" {
		a.Container = strings.SplitN(a.Pod, "-", 2)[0]
	}
	if a.Image == "" {
		a.Image = "docker.io/library/nginx:1.27"
	}
	if a.Node == "" {
		a.Node = "demo-node"
	}
	if a.User == "" {
		a.User = "root"
	}
	if a.ContainerID == "" {
		a.ContainerID = containerID(a.Namespace + "/" + a.Pod + "/" + a.Container)
	}
	if a.Command == "" {
		switch r, ok := rules[a.Rule]; {
		case ok:
			a.Command = r.command
		default:
			a.Command = "bash"
		}
	}
	if a.File == "" {
		switch a.Rule {
		case RuleSensitiveFile:
			a.File = "/etc/shadow"
		case RuleOutbound:
			a.File = "10.244.0.12:48822->203.0.113.50:4444"
		}
	}
	return a
}

func repository(image string) string {
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		return image[:i]
	}
	return image
}

func tag(image string) string {
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		return image[i+1:]
	}
	return "latest"
}

func procName(exe string) string { return exe[strings.LastIndex(exe, "/")+1:] }

func exePath(exe string) string {
	if strings.HasPrefix(exe, "/") {
		return exe
	}
	return "/usr/bin/" + exe
}

// containerID is a stable 12-hex id for a container.
func containerID(of string) string {
	h := fnv.New64a()
	h.Write([]byte(of))
	return fmt.Sprintf("%012x", h.Sum64()&0xffffffffffff)
}

func jsonNumber(n int64) json.Number { return json.Number(strconv.FormatInt(n, 10)) }
