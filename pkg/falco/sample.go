package falco

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// ShellRule is the rule Falco raises when a shell with a terminal starts in
// a container.
const ShellRule = "Terminal shell in container"

// ShellSpec describes a terminal shell in a container.
type ShellSpec struct {
	Time          time.Time
	Hostname      string
	ContainerID   string
	ContainerName string
	Image         string // repository, without tag
	ImageTag      string
	Namespace     string // empty: no k8s fields, as Falco 0.40 with rules 3.2.0 emits
	Pod           string
	CommandLine   string // e.g. "sh -c echo marker"
	User          string
}

// ShellEvent builds the "Terminal shell in container" alert Falco emits for
// spec, in the shape falcosidekick publishes (with a fresh uuid). It serves
// the demo and the stand-in used where Falco itself cannot run; it is not a
// detection.
func ShellEvent(spec ShellSpec) *Event {
	if spec.Time.IsZero() {
		spec.Time = time.Now().UTC()
	}
	if spec.User == "" {
		spec.User = "root"
	}
	proc := strings.Fields(spec.CommandLine + " sh")[0]
	fields := Fields{
		"container.id":   spec.ContainerID,
		"container.name": spec.ContainerName,
		"evt.arg.flags":  "EXE_WRITABLE|EXE_LOWER_LAYER",
		"evt.time":       jsonNumber(spec.Time.UnixNano()),
		"evt.type":       "execve",
		"proc.cmdline":   spec.CommandLine,
		"proc.exepath":   "/bin/" + proc,
		"proc.name":      proc,
		"proc.pname":     "containerd-shim",
		"proc.tty":       jsonNumber(34816),
		"user.loginuid":  jsonNumber(-1),
		"user.name":      spec.User,
		"user.uid":       jsonNumber(0),
	}
	tail := fmt.Sprintf("container_id=%s container_name=%s", spec.ContainerID, spec.ContainerName)
	if spec.Image != "" {
		fields["container.image.repository"] = spec.Image
		fields["container.image.tag"] = spec.ImageTag
		tail += fmt.Sprintf(" container_image_repository=%s container_image_tag=%s", spec.Image, spec.ImageTag)
	}
	if spec.Namespace != "" {
		fields["k8s.ns.name"] = spec.Namespace
		fields["k8s.pod.name"] = spec.Pod
		tail += fmt.Sprintf(" k8s_pod_name=%s k8s_ns_name=%s", spec.Pod, spec.Namespace)
	}
	output := fmt.Sprintf("%s: Notice A shell was spawned in a container with an attached terminal | evt_type=execve user=%s user_uid=0 user_loginuid=-1 process=%s proc_exepath=/bin/%s parent=containerd-shim command=%s terminal=34816 exe_flags=EXE_WRITABLE|EXE_LOWER_LAYER %s",
		spec.Time.UTC().Format("15:04:05.000000000"), spec.User, proc, proc, spec.CommandLine, tail)
	return &Event{
		Time: spec.Time, Rule: ShellRule, Priority: PriorityNotice, Source: "syscall", Hostname: spec.Hostname,
		Output: output, Tags: []string{"T1059", "container", "maturity_stable", "mitre_execution", "shell"},
		OutputFields: fields, UUID: uuid.NewString(),
	}
}

func jsonNumber(n int64) json.Number { return json.Number(strconv.FormatInt(n, 10)) }
