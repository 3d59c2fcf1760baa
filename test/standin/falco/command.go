package falcostandin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/yaml"

	"github.com/falco-phantom/kubectl-falco-phantom/internal/cmdmain"
)

// Variables the stand-in reads besides Falco's own configuration. On the
// hostlab the end-to-end suite sets them (and mounts the folders) through
// the Falco chart's extra.env and mounts values.
const (
	// EnvAuditLog is the API server's audit log, as mounted in the pod.
	EnvAuditLog = "FALCO_STANDIN_AUDIT_LOG"
	// EnvContainers is containerd's folder of running Kubernetes tasks
	// (<state>/io.containerd.runtime.v2.task/k8s.io), as mounted in the pod.
	EnvContainers = "FALCO_STANDIN_CONTAINERS"
	// EnvHostname is the variable the Falco chart sets to the node's name.
	EnvHostname = "FALCO_HOSTNAME"
)

// DefaultConfig is where Falco, and so the stand-in, reads its
// configuration (the Falco chart mounts its falco.yaml there).
const DefaultConfig = "/etc/falco/falco.yaml"

// Config is what the stand-in takes from Falco's falco.yaml: where to send
// alerts (http_output, which the chart points at falcosidekick) and where
// to answer the chart's health probes (webserver).
type Config struct {
	JSONOutput bool `json:"json_output"`
	HTTPOutput struct {
		Enabled bool   `json:"enabled"`
		URL     string `json:"url"`
	} `json:"http_output"`
	Webserver struct {
		Enabled       bool   `json:"enabled"`
		ListenAddress string `json:"listen_address"`
		ListenPort    int    `json:"listen_port"`
		Healthz       string `json:"k8s_healthz_endpoint"`
	} `json:"webserver"`
}

// ReadConfig reads and checks a falco.yaml: the stand-in needs the JSON
// HTTP output (as falcosidekick does) and the web server (as the chart's
// probes do).
func ReadConfig(file string) (*Config, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var c Config
	if err := yaml.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	switch {
	case !c.HTTPOutput.Enabled || c.HTTPOutput.URL == "":
		return nil, fmt.Errorf("%s: http_output is off: the stand-in, like Falco with falcosidekick, posts alerts there", file)
	case !c.JSONOutput:
		return nil, fmt.Errorf("%s: json_output is off: falcosidekick takes JSON alerts", file)
	case !c.Webserver.Enabled || c.Webserver.ListenPort == 0:
		return nil, fmt.Errorf("%s: webserver is off: the chart's probes ask it", file)
	}
	if c.Webserver.Healthz == "" {
		c.Webserver.Healthz = "/healthz"
	}
	return &c, nil
}

// Run runs the stand-in with Falco's command line (without the program
// name) until ctx ends.
func Run(ctx context.Context, args []string, streams genericiooptions.IOStreams, getenv func(string) string) error {
	cmd := &cobra.Command{
		Use:   "falco-standin [FALCO'S ARGUMENTS]",
		Short: "Stand in for Falco's detection of a terminal shell, from the API server's audit log",
		Long: `Stand in for Falco where it cannot run. It is NOT Falco and detects
nothing itself: it follows the API server's audit log ($` + EnvAuditLog + `) and, for
every exec of a shell with a terminal, posts the alert Falco's rule "Terminal
shell in container" would raise to Falco's http_output (falcosidekick), with the
container found in containerd's tasks ($` + EnvContainers + `). It reads Falco's
falco.yaml (` + DefaultConfig + `, or -c FILE) and answers its web server's health
probe. Falco's other arguments are accepted and ignored.`,
		// Falco's options are not the stand-in's: they are taken whole.
		DisableFlagParsing: true,
		SilenceUsage:       true,
		SilenceErrors:      true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return run(cmd.Context(), args, streams, getenv)
		},
	}
	cmd.SetOut(streams.Out)
	cmd.SetErr(streams.ErrOut)
	return cmdmain.Execute(ctx, cmd, args)
}

func run(ctx context.Context, args []string, streams genericiooptions.IOStreams, getenv func(string) string) error {
	log := slog.New(slog.NewTextHandler(streams.ErrOut, nil))
	configFile := DefaultConfig
	for i, a := range args {
		if (a == "-c" || a == "--config") && i+1 < len(args) {
			configFile = args[i+1]
		}
	}
	log.Warn("this is the Falco STAND-IN (test/standin/falco), not Falco: it detects shells from the audit log", "ignored_falco_arguments", strings.Join(args, " "))
	cfg, err := ReadConfig(configFile)
	if err != nil {
		return err
	}
	w := &Watcher{
		LogPath: getenv(EnvAuditLog), Containers: Containers{Dir: getenv(EnvContainers)},
		SidekickURL: cfg.HTTPOutput.URL, Hostname: getenv(EnvHostname), Log: log,
	}
	if w.LogPath == "" || w.Containers.Dir == "" {
		return fmt.Errorf("set %s and %s", EnvAuditLog, EnvContainers)
	}
	if w.Hostname == "" {
		w.Hostname, _ = os.Hostname()
	}
	addr := net.JoinHostPort(cfg.Webserver.ListenAddress, strconv.Itoa(cfg.Webserver.ListenPort))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+cfg.Webserver.Healthz, func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Content-Type", "application/json")
		_, _ = rw.Write([]byte(`{"status": "ok"}`))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("following the audit log", "log", w.LogPath, "containers", w.Containers.Dir, "http_output", w.SidekickURL, "healthz", addr+cfg.Webserver.Healthz)
	werr := w.Run(ctx)
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdown)
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return errors.Join(werr, err)
	}
	return werr
}
