package apiserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/apiserver"
	"slipway.dev/slipway/internal/client"
	"slipway.dev/slipway/internal/store/bolt"
)

const benchApps = 1000

func benchApp(iter, i int) *api.App {
	replicas := int32(1)
	name := fmt.Sprintf("app-%d-%d", iter, i)
	return &api.App{
		TypeMeta: api.TypeMeta{APIVersion: api.Version, Kind: "App"},
		Metadata: api.ObjectMeta{Name: name, Labels: map[string]string{"app": name}},
		Spec: api.AppSpec{Replicas: &replicas, Template: api.PodTemplate{Containers: []api.Container{{
			Name: "web", Command: []string{"/usr/local/bin/web", "--port", "8080"},
			Env:   []api.EnvVar{{Name: "MODE", Value: "bench"}},
			Ports: []api.ContainerPort{{Name: "http", Port: 8080}},
		}}}},
	}
}

// BenchmarkApply1000Apps applies 1,000 distinct Apps per iteration through
// the real HTTP server and client, as one /apply call and as 1,000 calls,
// next to the same number of raw store Creates: the ratio is what the API
// (HTTP, auth, decoding, defaulting, validation, registry) costs over the
// store. "fsync" is the production setting; "nofsync" takes the disk out
// to show the CPU cost of each layer.
func BenchmarkApply1000Apps(b *testing.B) {
	for _, mode := range []struct {
		name string
		opts bolt.Options
	}{{"fsync", bolt.Options{}}, {"nofsync", bolt.Options{NoFsync: true}}} {
		b.Run(mode.name, func(b *testing.B) { benchApply(b, mode.opts) })
	}
}

func benchApply(b *testing.B, storeOpts bolt.Options) {
	ctx := context.Background()
	setup := func(b *testing.B) (*client.Client, *testServer) {
		s := newServer(b, apiserver.Options{}, storeOpts)
		return client.New(client.Config{Server: s.URL, Token: s.Admin}), s
	}
	report := func(b *testing.B) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchApps), "ns/app")
	}

	b.Run("api-one-apply-call", func(b *testing.B) {
		c, _ := setup(b)
		for iter := 0; b.Loop(); iter++ {
			objs := make([]api.Object, benchApps)
			for i := range objs {
				objs[i] = benchApp(iter, i)
			}
			res, err := c.Apply(ctx, objs, false)
			if err != nil {
				b.Fatal(err)
			}
			if len(res) != benchApps || res[0].Result != "created" {
				b.Fatalf("results: %d, first %q", len(res), res[0].Result)
			}
		}
		report(b)
	})

	b.Run("api-1000-apply-calls", func(b *testing.B) {
		c, _ := setup(b)
		for iter := 0; b.Loop(); iter++ {
			for i := range benchApps {
				res, err := c.Apply(ctx, []api.Object{benchApp(iter, i)}, false)
				if err != nil {
					b.Fatal(err)
				}
				if res[0].Result != "created" {
					b.Fatalf("result %q", res[0].Result)
				}
			}
		}
		report(b)
	})

	b.Run("store-1000-creates", func(b *testing.B) {
		_, s := setup(b)
		for iter := 0; b.Loop(); iter++ {
			for i := range benchApps {
				a := benchApp(iter, i)
				v, err := json.Marshal(a)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := s.Store.Create(ctx, "/slipway/apps/default/"+a.Metadata.Name, v); err != nil {
					b.Fatal(err)
				}
			}
		}
		report(b)
	})
}
