package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/falco-phantom/kubectl-falco-phantom/internal/cmdmain"
	"github.com/falco-phantom/kubectl-falco-phantom/internal/input"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/falco"
)

// defaultSubjectTemplate is falcosidekick's default nats.subjecttemplate.
const defaultSubjectTemplate = "falco.<priority>.<rule>"

type options struct {
	listen     string
	natsURL    string
	template   string
	minimumArg string
	minimum    falco.Priority
}

// Run runs the stand-in with args (without the program name) until ctx
// ends. Its settings come from falcosidekick's variables, read through
// getenv, or from flags.
func Run(ctx context.Context, args []string, streams genericiooptions.IOStreams, getenv func(string) string) error {
	return cmdmain.Execute(ctx, newCommand(streams, getenv, serve), args)
}

// newCommand returns the command, which runs serve with its options.
func newCommand(streams genericiooptions.IOStreams, getenv func(string) string, serve func(context.Context, *options, io.Writer) error) *cobra.Command {
	o := &options{}
	cmd := &cobra.Command{
		Use:   "falcosidekick-standin",
		Short: "Stand in for falcosidekick: publish the Falco alerts POSTed to it to NATS",
		Long: `Stand in for falcosidekick where Falco cannot run (the hostlab, tests): take
Falco's JSON alerts by HTTP POST on / and publish each, with a fresh uuid,
to NATS, as falcosidekick's NATS output does. It detects nothing.`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.complete(); err != nil {
				return err
			}
			return serve(cmd.Context(), o, streams.ErrOut)
		},
	}
	cmd.SetOut(streams.Out)
	cmd.SetErr(streams.ErrOut)
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", ":"+input.Env(getenv, "LISTENPORT", "2801"), "address to take Falco's alerts on [LISTENPORT]")
	f.StringVar(&o.natsURL, "nats-url", getenv("NATS_HOSTPORT"), "NATS server to publish to [NATS_HOSTPORT]")
	f.StringVar(&o.template, "subject-template", getenv("NATS_SUBJECTTEMPLATE"), "subject of each alert; <priority> and <rule> are replaced [NATS_SUBJECTTEMPLATE]")
	f.StringVar(&o.minimumArg, "minimum-priority", getenv("NATS_MINIMUMPRIORITY"), "alerts below this priority are dropped [NATS_MINIMUMPRIORITY]")
	return cmd
}

// complete checks the options and fills in falcosidekick's defaults.
func (o *options) complete() error {
	if o.natsURL == "" {
		return errors.New("no NATS server: set NATS_HOSTPORT or --nats-url")
	}
	if o.template == "" {
		o.template = defaultSubjectTemplate
	}
	o.minimum = falco.PriorityDebug
	if o.minimumArg != "" {
		p, err := falco.ParsePriority(o.minimumArg)
		if err != nil {
			return fmt.Errorf("NATS_MINIMUMPRIORITY: %w", err)
		}
		o.minimum = p
	}
	return nil
}

// serve publishes what it is POSTed until ctx ends, logging to stderr.
func serve(ctx context.Context, o *options, stderr io.Writer) error {
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	nc, err := nats.Connect(o.natsURL,
		nats.Name("falcosidekick-standin"),
		nats.MaxReconnects(-1), nats.ReconnectWait(time.Second), nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { log.Warn("NATS disconnected", "error", err) }),
		nats.ReconnectHandler(func(*nats.Conn) { log.Info("NATS reconnected") }),
	)
	if err != nil {
		return fmt.Errorf("NATS %s: %w", o.natsURL, err)
	}
	defer nc.Close()
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: newHandler(o, nc, log), ReadHeaderTimeout: 10 * time.Second}
	log.Info("falcosidekick stand-in listening", "addr", ln.Addr().String(), "nats", o.natsURL, "subject", o.template)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	return nc.Drain()
}

// publisher is the part of a NATS connection the handler uses.
type publisher interface {
	Publish(subject string, data []byte) error
	FlushTimeout(time.Duration) error
	IsConnected() bool
}

// subject expands the template the way falcosidekick does: <priority> is
// the lower-case priority, <rule> the rule's slug.
func subject(template string, ev *falco.Event) string {
	p := strings.ToLower(ev.Priority.String())
	slug := strings.TrimPrefix(falco.Subject(ev.Priority, ev.Rule), "falco."+p+".")
	return strings.NewReplacer("<priority>", p, "<rule>", slug).Replace(template)
}

func newHandler(o *options, nc publisher, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if !nc.IsConnected() {
			http.Error(w, `{"status":"not connected to NATS"}`, http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, `{"status":"ok"}`)
	})
	mux.HandleFunc("GET /ping", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "pong\n") })
	mux.HandleFunc("POST /{$}", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, falco.MaxEventBytes+1))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		ev, err := falco.Parse(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if ev.Priority < o.minimum {
			w.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(w, `{"published":false,"reason":"below the minimum priority"}`)
			return
		}
		// falcosidekick gives every alert it receives a fresh uuid.
		ev.UUID = uuid.NewString()
		data, err := json.Marshal(ev)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		subj := subject(o.template, ev)
		if err := nc.Publish(subj, data); err == nil {
			err = nc.FlushTimeout(5 * time.Second)
		}
		if err != nil {
			log.Error("publish", "subject", subj, "error", err)
			http.Error(w, "publish to NATS: "+err.Error(), http.StatusBadGateway)
			return
		}
		log.Info("published", "subject", subj, "uuid", ev.UUID, "rule", ev.Rule)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"published": true, "subject": subj, "uuid": ev.UUID})
	})
	return mux
}
