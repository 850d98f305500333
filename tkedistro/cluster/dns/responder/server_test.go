package main

import (
	"fmt"
	"io/ioutil"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/miekg/dns"
	v1 "k8s.io/api/core/v1"
)

// listen serves handler on 127.0.0.1 over UDP and TCP (same port); returns the address.
func listen(t *testing.T, handler dns.Handler) string {
	t.Helper()
	for attempt := 0; attempt < 20; attempt++ {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := pc.LocalAddr().String()
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			pc.Close()
			continue
		}
		udp := &dns.Server{PacketConn: pc, Handler: handler}
		tcp := &dns.Server{Listener: ln, Handler: handler}
		go func() { _ = udp.ActivateAndServe() }()
		go func() { _ = tcp.ActivateAndServe() }()
		t.Cleanup(func() { _ = udp.Shutdown(); _ = tcp.Shutdown() })
		time.Sleep(50 * time.Millisecond)
		return addr
	}
	t.Fatal("no free port")
	return ""
}

func query(t *testing.T, proto, addr, name string, qtype uint16) *dns.Msg {
	t.Helper()
	req := new(dns.Msg)
	req.SetQuestion(name, qtype)
	resp, _, err := (&dns.Client{Net: proto, Timeout: 2 * time.Second}).Exchange(req, addr)
	if err != nil {
		t.Fatalf("%s %s: %v", proto, name, err)
	}
	return resp
}

// A headless Service with 60 endpoints does not fit 512 bytes: UDP says TC, TCP has all.
func TestUDPTruncationAndTCP(t *testing.T) {
	h, client := fixture(t)
	var ready []v1.EndpointAddress
	for i := 0; i < 60; i++ {
		ready = append(ready, addr(fmt.Sprintf("10.244.9.%d", i+1), ""))
	}
	if err := client.Tracker().Add(service("big", v1.ClusterIPNone, httpPort())); err != nil {
		t.Fatal(err)
	}
	if err := client.Tracker().Add(endpoints("big", ready, nil, 80)); err != nil {
		t.Fatal(err)
	}
	name := "big.dns-1234.svc.cluster.local."
	eventually(t, func() bool { return len(ask(h, name, dns.TypeA).Answer) == 60 })
	addr := listen(t, h)
	udp := query(t, "udp", addr, name, dns.TypeA)
	udp.Compress = true // as sent
	if !udp.Truncated || len(udp.Answer) >= 60 || udp.Len() > 512 {
		t.Fatalf("udp: truncated=%v answers=%d len=%d", udp.Truncated, len(udp.Answer), udp.Len())
	}
	tcp := query(t, "tcp", addr, name, dns.TypeA)
	if tcp.Truncated || len(tcp.Answer) != 60 {
		t.Fatalf("tcp: truncated=%v answers=%d", tcp.Truncated, len(tcp.Answer))
	}
	small := query(t, "tcp", addr, "test-service-2.dns-1234.svc.cluster.local.", dns.TypeA)
	if len(small.Answer) != 1 || !small.Authoritative {
		t.Fatalf("tcp small: %v", small)
	}
}

// Names outside the zone go to the upstream, over the protocol the client used.
func TestForwarding(t *testing.T) {
	upstream := listen(t, dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		rr, _ := dns.NewRR(req.Question[0].Name + " 60 IN A 192.0.2.10")
		m.Answer = []dns.RR{rr}
		_ = w.WriteMsg(m)
	}))
	h, _ := fixture(t)
	h.Upstreams = []string{"127.0.0.1:1", upstream} // the first does not answer
	addr := listen(t, h)
	for _, proto := range []string{"udp", "tcp"} {
		m := query(t, proto, addr, "example.org.", dns.TypeA)
		if len(m.Answer) != 1 || m.Answer[0].(*dns.A).A.String() != "192.0.2.10" || m.Authoritative {
			t.Fatalf("%s forward: %v", proto, m)
		}
	}
	// an ExternalName target outside the zone is resolved upstream for A questions
	m := query(t, "udp", addr, "dns-test-service-3.dns-1234.svc.cluster.local.", dns.TypeA)
	if got := values(m); len(got) != 2 || got[0] != "192.0.2.10" || got[1] != "foo.example.com." {
		t.Fatalf("chase: %v", got)
	}
}

func TestNoUpstreamIsQuickServfail(t *testing.T) {
	h, _ := fixture(t)
	start := time.Now()
	m := ask(h, "example.org.", dns.TypeA)
	if m.Rcode != dns.RcodeServerFailure || time.Since(start) > time.Second {
		t.Fatalf("rcode %s after %v", dns.RcodeToString[m.Rcode], time.Since(start))
	}
}

const staticYAML = `apiVersion: v1
kind: Service
metadata: {name: web, namespace: demo}
spec:
  clusterIP: 10.96.0.20
  ports: [{name: http, port: 80, protocol: TCP}]
---
apiVersion: v1
kind: Service
metadata: {name: db}
spec:
  clusterIP: None
---
apiVersion: v1
kind: Endpoints
metadata: {name: db}
subsets:
- addresses: [{ip: 10.244.0.9, hostname: db-0}]
  ports: [{name: pg, port: 5432, protocol: TCP}]
`

func TestStaticSource(t *testing.T) {
	path := filepath.Join(t.TempDir(), "objects.yaml")
	if err := ioutil.WriteFile(path, []byte(staticYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := staticSource(path)
	if err != nil {
		t.Fatal(err)
	}
	h := &Handler{Records: &Records{Zone: "cluster.local.", TTL: 5, Services: src.services,
		Endpoints: src.endpoints}}
	expect(t, h, "web.demo.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, "10.96.0.20")
	expect(t, h, "db-0.db.default.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, "10.244.0.9")
	expect(t, h, "_pg._tcp.db.default.svc.cluster.local.", dns.TypeSRV, dns.RcodeSuccess,
		"0 100 5432 db-0.db.default.svc.cluster.local.")

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	_ = ioutil.WriteFile(bad, []byte("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n"), 0o644)
	if _, err := staticSource(bad); err == nil {
		t.Fatal("a Pod in the static file must be refused")
	}
}

func TestFlags(t *testing.T) {
	o, err := parseFlags([]string{"--domain", "example.test", "--port", "1053"}, ioutil.Discard)
	if err != nil || o.domain != "example.test" || o.port != 1053 || o.healthPort != 8080 || o.ttl != 5 {
		t.Fatalf("%+v %v", o, err)
	}
	if _, err := parseCIDRs("10.96.0.0/12,bogus"); err == nil {
		t.Fatal("a bad CIDR must be refused")
	}
}
