package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/falco-phantom/kubectl-falco-phantom/mockphantom"
)

// run serves until ctx is done; see Run.
func (o *options) run(ctx context.Context, stderr io.Writer, ready func(*mockphantom.Running)) error {
	logger, err := newLogger(stderr, o.logFormat, o.logLevel)
	if err != nil {
		return err
	}
	s, err := mockphantom.New(ctx, mockphantom.Config{
		DBPath:          o.db,
		User:            o.basicUser(),
		Password:        o.password,
		Token:           o.token,
		InsecureNoAuth:  o.insecureNoAuth,
		Labels:          o.labels,
		DuplicateStatus: o.duplicateStatus,
		MaxBodyBytes:    o.maxBodyBytes,
		PlaybooksFile:   o.playbooks,
		FaultSeed:       o.faultSeed,
		Logger:          logger,
	})
	if err != nil {
		return err
	}
	defer func() { _ = s.Close() }()
	f := mockphantom.Faults{Latency: o.faultLatency, ErrorRate: o.faultErrorRate, TimeoutRate: o.faultTimeoutRate, ThrottleRate: o.faultThrottleRate}
	if o.faultDownFor > 0 {
		f.DownUntil = time.Now().Add(o.faultDownFor)
	}
	s.SetFaults(f)

	tlsCfg, err := o.tlsConfig()
	if err != nil {
		return err
	}
	running, err := mockphantom.Serve(ctx, s, o.listen, tlsCfg)
	if err != nil {
		return err
	}
	logger.Info("mockphantom listening", "url", running.URL, "db", o.db, "auth", o.authMode(),
		"labels", strings.Join(s.Labels(), ","), "playbooks", strings.Join(s.Playbooks(), ","), "version", mockphantom.Version)
	if ready != nil {
		ready(running)
	}

	select {
	case <-ctx.Done():
		logger.Info("shutting down")
	case <-running.Done():
	}
	if err := running.Close(); err != nil {
		return err
	}
	if err := running.Err(); err != nil {
		return fmt.Errorf("server stopped: %w", err)
	}
	return s.Close()
}

func (o *options) tlsConfig() (*tls.Config, error) {
	switch {
	case o.tlsSelfSigned:
		cfg, caPEM, err := mockphantom.SelfSignedTLS(strings.Split(o.tlsHosts, ","))
		if err != nil {
			return nil, err
		}
		if o.tlsCAOut != "" {
			if err := os.WriteFile(o.tlsCAOut, caPEM, 0o644); err != nil {
				return nil, fmt.Errorf("failed to write --tls-ca-out: %w", err)
			}
		}
		return cfg, nil
	case o.tlsCert != "":
		cert, err := tls.LoadX509KeyPair(o.tlsCert, o.tlsKey)
		if err != nil {
			return nil, fmt.Errorf("failed to load --tls-cert/--tls-key: %w", err)
		}
		return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}, nil
	}
	return nil, nil
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q is not one of debug, info, warn, error", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q is not text or json", format)
}
