package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/forwarder"
)

// natsServer is an embedded NATS server with JetStream, and this
// process's connection to it.
type natsServer struct {
	srv *server.Server
	nc  *nats.Conn
	js  jetstream.JetStream
}

// startNATS starts an embedded NATS server with JetStream storing in dir,
// and connects to it.
func startNATS(dir string) (*natsServer, error) {
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true,
	})
	if err != nil {
		return nil, err
	}
	srv.Start()
	n := &natsServer{srv: srv}
	if !srv.ReadyForConnections(10 * time.Second) {
		n.close()
		return nil, errors.New("NATS server not ready after 10s")
	}
	if n.nc, err = nats.Connect(srv.ClientURL()); err == nil {
		n.js, err = jetstream.New(n.nc)
	}
	if err != nil {
		n.close()
		return nil, err
	}
	return n, nil
}

func (n *natsServer) url() string { return n.srv.ClientURL() }

func (n *natsServer) close() {
	if n.nc != nil {
		n.nc.Close()
	}
	n.srv.Shutdown()
	n.srv.WaitForShutdown()
}

// preloadStream creates a stream the way the forwarder does and stores
// every alert of w in it, on the alert's own subject.
func (n *natsServer) preloadStream(ctx context.Context, name string, subjects []string, w *workload) error {
	d := forwarder.Defaults().NATS
	_, err := n.js.CreateStream(ctx, jetstream.StreamConfig{
		Name: name, Subjects: subjects, Storage: jetstream.FileStorage, Replicas: 1,
		MaxAge: d.StreamMaxAge, Discard: jetstream.DiscardOld,
	})
	if err != nil {
		return err
	}
	return preload(ctx, n.js, w)
}

// preload stores every alert of w in the stream, on its subject, a
// thousand at a time, waiting for the stream to confirm each thousand.
func preload(ctx context.Context, js jetstream.JetStream, w *workload) error {
	for from := 0; from < len(w.events); from += 1000 {
		for i := from; i < min(from+1000, len(w.events)); i++ {
			if _, err := js.PublishAsync(w.events[i].Subject(), w.bodies[i]); err != nil {
				return fmt.Errorf("publish: %w", err)
			}
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-time.After(waitLimit):
			return errors.New("the stream did not confirm the alerts")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
